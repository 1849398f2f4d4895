"""One registry of baselines: ``name -> BaselineSpec``.

Specs name their config and agent classes as ``"module:attribute"`` strings, so listing the
registry (``--help``, ``--plan``) never imports torch; the classes load on first use.

Three ways in from outside the repository, all ending in :func:`register` (see
docs/agent-contract.md): an installed package's entry point in the ``vorb.baselines`` group
(found at start-up, loaded when first asked for), ``--algos some_module:SomeAgent`` (a class or a
spec object, resolved by :func:`resolve`), and ``registry.register(...)`` from a user's script
that then calls ``benchmark.run.main()``. :mod:`benchmark.harness.plugins` loads and checks them; a
broken one is a :class:`~benchmark.harness.plugins.PluginError` naming it, never a skip.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BaselineSpec:
    """How the harness finds, configures and builds one baseline.

    name: stable identifier used on the command line and in every results row.
    config: ``"module:Class"`` of the baseline's frozen config dataclass (defaults = paper values).
    agent: ``"module:Class"`` of its agent, built as ``Agent(config, obs_shape, action_dim, device)``.
    offline: True when it trains from a dataset; False when it interacts with the environment
        (then it runs once per seed, not once per dataset).
    summary: one line for ``--help``.
    obs_kind: what the agent observes: ``"pixels"`` (3-frame uint8 stacks, 9x84x84) or
        ``"state"`` (the walker's 24-dimensional proprioceptive state, float32; offline cells
        see it normalised by the dataset's mean and std). Every results row records it.
    family: the algorithm family shared by a pixel and a state baseline (``bc``, ``td3bc``,
        ``sac-offline``...): the report's pixel-state gap pairs baselines by it (default: the
        name, a family of one).
    origin: where it was registered from: ``built-in`` (``baselines/__init__.py``), ``entry
        point``, ``reference`` (``--algos module:Class``) or ``script``; :func:`register` fills
        it in when left empty. Every origin but ``built-in`` is external.
    entry_point: for plugins, how they were found (``vorb.baselines: name = module:attr``).
    distribution: the installed distribution (package) that provides it, if any.
    """

    name: str
    config: str
    agent: str
    offline: bool
    summary: str
    obs_kind: str = "pixels"
    family: str = ""
    origin: str = ""
    entry_point: str | None = None
    distribution: str | None = None

    def __post_init__(self) -> None:
        if not self.family:
            object.__setattr__(self, "family", self.name)
        if self.obs_kind not in OBS_KINDS:
            raise ValueError(
                f"baseline {self.name!r}: obs_kind {self.obs_kind!r} is not one of {OBS_KINDS}"
            )

    @property
    def external(self) -> bool:
        return self.origin != BUILT_IN

    def config_class(self) -> type:
        return _load(self.config)

    def agent_class(self) -> type:
        return _load(self.agent)

    def default_config(self, **overrides: Any) -> Any:
        import dataclasses

        return dataclasses.replace(self.config_class()(), **overrides)


BUILT_IN = "built-in"


def _load(reference: str) -> Any:
    """``"module:Attribute"`` or ``"module:Class.Attribute"`` -> the object."""
    module_name, _, path = reference.partition(":")
    found: Any = importlib.import_module(module_name)
    for attribute in path.split("."):
        found = getattr(found, attribute)
    return found


OBS_KINDS = ("pixels", "state")
# Selection words of --algos besides names: every baseline, or those of one observation kind.
SELECTIONS = {
    "all": "every registered baseline, pixels and state",
    "pixels": "the pixel baselines",
    "state": "the state baselines",
}

_REGISTRY: dict[str, BaselineSpec] = {}
# Installed plugins' entry points by name, found at start-up and loaded when first asked for
# (a list: two distributions may declare one name, which is an error when it is asked for).
_PENDING: dict[str, list[Any]] = {}
_builtins = {"state": "absent"}  # "absent", "loading", "loaded"


def register(spec: BaselineSpec) -> BaselineSpec:
    """Add a baseline; a name registered twice is an error, never a silent override.

    Called from a user's script before ``benchmark.run.main()``, it registers an external
    baseline (``origin`` "script" unless given); the name of a built-in or of an installed
    plugin is refused.
    """
    import dataclasses

    from benchmark.harness.plugins import PluginError, check_spec

    loading_builtins = _builtins["state"] == "loading"
    if not loading_builtins:
        _ensure_builtins()  # so an external name is checked against the built-ins'
    if not spec.origin:
        spec = dataclasses.replace(spec, origin=BUILT_IN if loading_builtins else "script")
    if spec.name in SELECTIONS:
        raise ValueError(
            f"{spec.name!r} is reserved: --algos {spec.name} selects {SELECTIONS[spec.name]}"
        )
    taken = _REGISTRY.get(spec.name)
    if spec.external and taken is not None and not taken.external:
        raise PluginError(spec, f"the name {spec.name!r} is taken by a built-in baseline")
    if spec.external and spec.name in _PENDING:
        raise PluginError(spec, f"the name {spec.name!r} is taken by an installed plugin")
    if taken is not None:
        raise ValueError(f"baseline {spec.name!r} is already registered")
    if spec.external:
        check_spec(spec)
    _REGISTRY[spec.name] = spec
    return spec


def adopt(spec: BaselineSpec) -> BaselineSpec:
    """``spec`` in this process's registry: a worker receives the spec its launcher resolved
    (a script's or ``--algos module:Class`` registration exists only in the launcher)."""
    _ensure_builtins()
    if _REGISTRY.get(spec.name) != spec:
        _PENDING.pop(spec.name, None)  # the launcher has loaded this entry point already
        register(spec)
    return spec


def names() -> list[str]:
    """Every registered baseline, in registration order; installed plugins last."""
    _ensure_builtins()
    return list(dict.fromkeys([*_REGISTRY, *_PENDING]))


def get(name: str) -> BaselineSpec:
    """The spec of ``name``; an installed plugin is loaded and checked on first use."""
    _ensure_builtins()
    if name in _PENDING:
        from benchmark.harness.plugins import load_entry_point

        entry_points = _PENDING[name]
        spec = load_entry_point(name, entry_points, _REGISTRY.get(name))  # raises: stays pending
        del _PENDING[name]  # register() refuses external names that are still pending
        try:
            register(spec)
        except ValueError:  # pending again: asked for again, it fails again (never a skip)
            _PENDING[name] = entry_points
            raise
    if name not in _REGISTRY:
        raise KeyError(f"unknown baseline {name!r}; valid names: {', '.join(names())}")
    return _REGISTRY[name]


def resolve(selection: str) -> list[BaselineSpec]:
    """``"all"``, ``"pixels"``, ``"state"``, or a comma-separated list of names or
    ``module:Class`` references -> specs.

    ``all`` is every baseline of both observation kinds (installed plugins included); ``pixels``
    and ``state`` those of one kind. Unknown names raise KeyError listing the valid ones; a
    broken plugin raises :class:`~benchmark.harness.plugins.PluginError` naming it and what is wrong.
    """
    _ensure_builtins()
    word = selection.strip()
    if word == "all":
        return [get(name) for name in names()]
    if word in OBS_KINDS:
        return [spec for spec in map(get, names()) if spec.obs_kind == word]
    chosen = [part.strip() for part in selection.split(",") if part.strip()]
    if not chosen:
        valid = ", ".join(names())
        raise ValueError(
            f"no baseline named in {selection!r}; valid: {', '.join(SELECTIONS)}, {valid}"
        )
    return [_by_reference(part) if ":" in part else get(part) for part in chosen]


def _by_reference(reference: str) -> BaselineSpec:
    from benchmark.harness.plugins import load_reference

    spec = load_reference(reference)
    if _REGISTRY.get(spec.name) == spec:
        return spec  # resolved before in this process
    return register(spec)


def _ensure_builtins() -> None:
    if _builtins["state"] != "absent":
        return
    # The built-in baselines register themselves in baselines/__init__.py (strings only).
    _builtins["state"] = "loading"
    try:
        importlib.import_module("baselines")
    finally:
        _builtins["state"] = "loaded"
    from benchmark.harness.plugins import discover_entry_points

    _PENDING.update(discover_entry_points())
