"""Baselines from outside the repository: loading, checking and provenance.

Three ways in, all ending in :func:`benchmark.harness.registry.register` (the one registry):

- an installed package declares an entry point in the ``vorb.baselines`` group of its own
  ``pyproject.toml`` (``tiny-bc = "vorb_tiny_bc:TinyBCAgent"``); it is found at start-up and
  loaded when first asked for (:func:`load_entry_point`);
- ``--algos some_module:SomeAgent`` names a class or a :class:`BaselineSpec` object in an
  importable module (:func:`load_reference`);
- ``registry.register(BaselineSpec(...))`` from the user's own script, which then calls
  ``benchmark.run.main()``.

The object named is a :class:`BaselineSpec` or an agent class carrying its config as a
``Config`` attribute (optional ``name``, ``offline``, ``summary``). Everything wrong with a
plugin (the import fails, a method of the Agent protocol is missing, the config is not a frozen
dataclass, the name is taken) is a :class:`PluginError` naming the plugin and how it was found,
raised when the plan is made, before any worker starts. The contract is docs/agent-contract.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from baselines.contract import SELECTIONS, BaselineSpec, load

ENTRY_POINT_GROUP = "vorb.baselines"
AGENT_METHODS = ("update", "act", "state_dict", "load_state_dict")  # benchmark.harness.training
# Config fields the harness itself reads (benchmark.harness.training.make_trainer).
TRAINER_FIELDS = {
    True: ("batch_size",),
    False: ("batch_size", "initial_random_steps", "replay_capacity"),
}
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a results folder name


class PluginError(ValueError):
    """A baseline from outside the repository that cannot be used; the message names it."""

    def __init__(self, plugin: BaselineSpec | str, problem: str) -> None:
        where = plugin if isinstance(plugin, str) else describe(plugin)
        super().__init__(f"{where}: {problem}")


def describe(spec: BaselineSpec) -> str:
    """``plugin 'tiny-bc' (entry point ..., distribution ...)``: how a user finds it again."""
    details = [
        f"entry point {spec.entry_point}" if spec.entry_point else None,
        f"--algos {spec.agent}" if spec.origin == "reference" else None,
        "registered by a script" if spec.origin == "script" else None,
        f"distribution {spec.distribution} {_version(spec.distribution)}"
        if spec.distribution
        else None,
    ]
    found = ", ".join(detail for detail in details if detail)
    return f"plugin {spec.name!r}" + (f" ({found})" if found else "")


# -- finding and loading -----------------------------------------------------------------------
def discover_entry_points() -> dict[str, list[metadata.EntryPoint]]:
    """Every installed ``vorb.baselines`` entry point by name (metadata only: nothing imported)."""
    found: dict[str, list[metadata.EntryPoint]] = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry_point.name, []).append(entry_point)
    return found


def _entry_point_text(entry_point: metadata.EntryPoint) -> str:
    return f"{ENTRY_POINT_GROUP}: {entry_point.name} = {entry_point.value}"


def _distribution_name(entry_point: metadata.EntryPoint) -> str | None:
    dist = getattr(entry_point, "dist", None)
    return None if dist is None else dist.metadata["Name"]


def load_entry_point(
    name: str, entry_points: list[metadata.EntryPoint], built_in: BaselineSpec | None
) -> BaselineSpec:
    """Import an installed plugin's entry point and make its spec (checked on registration)."""
    entry_point = entry_points[0]
    where = _placeholder(
        name, entry_point.value, "entry point",
        _entry_point_text(entry_point), _distribution_name(entry_point),
    )  # fmt: skip
    if built_in is not None:
        raise PluginError(
            where,
            f"the name {name!r} is taken by a built-in baseline; rename the entry point in the "
            "plugin's pyproject.toml",
        )
    if len(entry_points) > 1:
        others = "; ".join(
            f"{_entry_point_text(e)} ({_distribution_name(e)})" for e in entry_points
        )
        raise PluginError(where, f"declared by several installed distributions: {others}")
    try:
        found = entry_point.load()
    except Exception as error:  # any import-time failure of the user's module
        raise PluginError(
            where, f"cannot import {entry_point.value}: {_error_text(error)}"
        ) from None
    spec = spec_from_object(found, entry_point.value, where)
    if spec.name != name:
        raise PluginError(where, f"its spec is named {spec.name!r}, its entry point {name!r}")
    return spec


def load_reference(reference: str) -> BaselineSpec:
    """``--algos some_module:SomeAgent`` -> the spec of that class or spec object."""
    where = f"--algos {reference}"
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise PluginError(where, "expected module:Class (e.g. my_agents:MyAgent)")
    try:
        found = load(reference)
    except ModuleNotFoundError as error:
        raise PluginError(
            where,
            f"cannot import {module_name}: {_error_text(error)} (is its folder the current "
            "directory or on PYTHONPATH?)",
        ) from None
    except AttributeError as error:
        raise PluginError(where, f"{module_name} has no {attribute}: {error}") from None
    except Exception as error:  # any import-time failure of the user's module
        raise PluginError(where, f"cannot import {module_name}: {_error_text(error)}") from None
    placeholder = _placeholder(
        reference, reference, "reference", None, distribution_of(module_name)
    )
    return spec_from_object(found, reference, placeholder)


def _placeholder(
    name: str, agent: str, origin: str, entry_point: str | None, distribution: str | None
) -> BaselineSpec:
    """A spec that only says where a plugin was found, for errors before its own spec exists."""
    return BaselineSpec(
        name, "", agent, True, "", origin=origin, entry_point=entry_point, distribution=distribution
    )


def spec_from_object(found: Any, reference: str, where: BaselineSpec) -> BaselineSpec:
    """A :class:`BaselineSpec` (kept, with where it came from) or an agent class with a
    ``Config`` attribute (turned into string references, so a worker process loads it again)."""
    found_by = {"origin": where.origin, "entry_point": where.entry_point}
    found_by["distribution"] = where.distribution
    if isinstance(found, BaselineSpec):
        spec = dataclasses.replace(found, **found_by)
    elif isinstance(found, type):
        if not hasattr(found, "Config"):
            raise PluginError(
                where,
                f"{reference} has no Config attribute: an agent class names its frozen config "
                "dataclass as `Config = MyConfig` (docs/agent-contract.md)",
            )
        doc = (found.__doc__ or "").strip().splitlines()
        spec = BaselineSpec(
            name=getattr(found, "name", None) or _default_name(found, where),
            config=f"{reference}.Config",
            agent=reference,
            offline=bool(getattr(found, "offline", True)),
            summary=getattr(found, "summary", None) or (doc[0] if doc else reference),
            obs_kind=getattr(found, "obs_kind", "pixels"),
            **found_by,
        )
    else:
        raise PluginError(
            where, f"{reference} is a {type(found).__name__}, not an agent class or a BaselineSpec"
        )
    if not NAME_PATTERN.fullmatch(spec.name) or spec.name in SELECTIONS:
        raise PluginError(
            where, f"name {spec.name!r} is not usable as a results folder (letters, digits, . _ -)"
        )
    return spec


def _default_name(found: type, where: BaselineSpec) -> str:
    """An entry point's own name; for ``--algos module:Class``, the class name in lower case."""
    return where.name if where.origin == "entry point" else found.__name__.lower()


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


# -- checking --------------------------------------------------------------------------------
def check_spec(spec: BaselineSpec) -> None:
    """Load an external spec's classes and check them against the contract (PluginError)."""
    config_class = _load_part(spec, spec.config, "config")
    if not (
        isinstance(config_class, type)
        and dataclasses.is_dataclass(config_class)
        and config_class.__dataclass_params__.frozen  # type: ignore[attr-defined]
    ):
        raise PluginError(
            spec,
            f"config {spec.config} is not a frozen dataclass (declare it with "
            "@dataclass(frozen=True): the harness records it and changes it only through "
            "dataclasses.replace)",
        )
    try:
        config = config_class()
    except TypeError as error:
        raise PluginError(
            spec, f"config {spec.config} cannot be built from its defaults: {error}"
        ) from None
    missing = [f for f in TRAINER_FIELDS[spec.offline] if not hasattr(config, f)]
    if missing:
        kind = "an offline" if spec.offline else "an online"
        raise PluginError(
            spec, f"config {spec.config} lacks {', '.join(missing)}, which {kind} trainer reads"
        )
    agent_class = _load_part(spec, spec.agent, "agent")
    lacking = [m for m in AGENT_METHODS if not callable(getattr(agent_class, m, None))]
    if lacking:
        raise PluginError(
            spec,
            f"agent {spec.agent} lacks {', '.join(lacking)} (the Agent protocol: "
            f"{', '.join(AGENT_METHODS)}; docs/agent-contract.md)",
        )


def _load_part(spec: BaselineSpec, reference: str, part: str) -> Any:
    try:
        return load(reference)
    except Exception as error:  # an import error, a missing attribute: the user's to fix
        raise PluginError(
            spec, f"cannot load its {part} {reference}: {_error_text(error)}"
        ) from None


# -- provenance ------------------------------------------------------------------------------
def config_hash(config: Any) -> str:
    """SHA-256 of the config as canonical JSON: equal hashes, equal settings."""
    text = json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def distribution_of(module_name: str) -> str | None:
    """The installed distribution that provides a top-level module, if any."""
    top = module_name.partition(".")[0]
    names = metadata.packages_distributions().get(top) or []
    return names[0] if names else None


def provenance(spec: BaselineSpec, config: Any) -> dict[str, Any]:
    """Where a cell's baseline came from, for its ``meta.json``: origin, config hash and, for
    external baselines, the module, its distribution and version and its git commit."""
    record: dict[str, Any] = {
        "name": spec.name,
        "origin": spec.origin,
        "external": spec.external,
        "config_sha256": config_hash(config),
    }
    if not spec.external:
        return record  # the repository's own commit is in the metadata's "git"
    module_name = spec.agent.partition(":")[0]
    source = getattr(sys.modules.get(module_name), "__file__", None)
    dist_name = spec.distribution or distribution_of(module_name)
    record |= {
        "agent": spec.agent,
        "config_class": spec.config,
        "entry_point": spec.entry_point,
        "module_file": source,
        "distribution": dist_name,
        "version": _version(dist_name),
        "git": source_commit(source, dist_name),
    }
    return record


def _version(dist_name: str | None) -> str | None:
    if dist_name is None:
        return None
    try:
        return metadata.version(dist_name)
    except metadata.PackageNotFoundError:
        return None


def source_commit(source: str | None, dist_name: str | None) -> dict[str, Any] | None:
    """The git commit behind a plugin: the checkout its module file is tracked in (an editable
    install, a file given by ``--algos``), else what pip recorded (``direct_url.json``): a VCS
    install's commit, or the checkout of the local folder it was installed from, as it is now.
    None when nothing tells."""
    from benchmark.harness.results import git_commit  # late: pandas stays out of --help

    if source is not None:
        found = git_commit(Path(source).parent, tracked=Path(source))
        if found["commit"] is not None:
            return found | {"from": f"the checkout holding {source}"}
    direct = _direct_url(dist_name)
    if direct is None:
        return None
    if "vcs_info" in direct:
        commit = direct["vcs_info"].get("commit_id")
        return {"commit": commit, "dirty": None, "from": f"pip's record of {direct.get('url')}"}
    url = str(direct.get("url", ""))
    if url.startswith("file://"):
        folder = Path(url.removeprefix("file://"))
        found = git_commit(folder, tracked=folder)
        if found["commit"] is not None:
            return found | {"from": f"the checkout holding {folder}, installed from it"}
    return None


def _direct_url(dist_name: str | None) -> dict[str, Any] | None:
    if dist_name is None:
        return None
    try:
        text = metadata.distribution(dist_name).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    return json.loads(text) if text else None
