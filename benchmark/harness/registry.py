"""One registry of baselines: ``name -> BaselineSpec``, the built-in ones in one table below.

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

import dataclasses
from typing import Any

from baselines.contract import BUILT_IN, OBS_KINDS, SELECTIONS, BaselineSpec, ObsKind
from benchmark.harness.plugins import (
    PluginError,
    check_spec,
    discover_entry_points,
    load_entry_point,
    load_reference,
)

__all__ = ["BUILT_IN", "OBS_KINDS", "SELECTIONS", "BaselineSpec", "get", "names", "register"]


def _built_in(
    name: str, agent: str, config: str, offline: bool, family: str, summary: str, obs_kind: ObsKind
) -> BaselineSpec:
    """A built-in baseline: ``agent`` and ``config`` are ``module:Class`` under ``baselines``."""
    return BaselineSpec(
        name=name,
        config=f"baselines.{config}",
        agent=f"baselines.{agent}",
        offline=offline,
        summary=summary,
        family=family,
        origin=BUILT_IN,
        obs_kind=obs_kind,
    )


# The built-in baselines: one table, so that the pixel and the state baseline of each family sit
# side by side and listing them imports no agent (classes are named by string, loaded on use).
# Each agent's file holds its config, networks, losses and update.
# fmt: off
BUILT_INS = (
    # -- the pixel track: 3-frame stacks of 84x84 renders ------------------------------------
    _built_in("sac-curl-online", "sac_curl:SACCURLAgent", "sac_curl:SACCURLConfig", False,
              "sac-online", "SAC + CURL interacting with the pixel walker (upper reference)",
              "pixels"),
    _built_in("sac-curl-offline", "sac_curl:SACCURLAgent", "sac_curl:SACCURLConfig", True,
              "sac-offline", "the same SAC + CURL agent trained only from a dataset", "pixels"),
    _built_in("cql-curl", "cql_curl:CQLCURLAgent", "cql_curl:CQLCURLConfig", True, "cql",
              "SAC + CURL with the CQL(H) conservative penalty on both critics", "pixels"),
    _built_in("bc-pixels", "bc:BCAgent", "bc:BCConfig", True, "bc",
              "behaviour cloning: pixel encoder + policy, random-shift augmentation", "pixels"),
    _built_in("drqbc", "td3bc:TD3BCAgent", "td3bc:DrQBCConfig", True, "td3bc",
              "DrQ-v2 actor-critic with the TD3+BC actor term (V-D4RL)", "pixels"),
    # -- the state track: the same agents on the walker's 24-dimensional proprioceptive state --
    _built_in("sac-state-online", "sac_curl:SACCURLAgent", "sac_curl:SACStateConfig", False,
              "sac-online",
              "SAC interacting with the state walker (upper reference of the state track)",
              "state"),
    _built_in("sac-state-offline", "sac_curl:SACCURLAgent", "sac_curl:SACStateConfig", True,
              "sac-offline", "the same SAC trained only from a dataset's states", "state"),
    _built_in("cql-state", "cql_curl:CQLCURLAgent", "cql_curl:CQLStateConfig", True, "cql",
              "SAC with the CQL(H) penalty on states, CORL's sizes (3x256, 10 sampled actions)",
              "state"),
    _built_in("bc-state", "bc:BCAgent", "bc:BCStateConfig", True, "bc",
              "behaviour cloning on states: 256-256 MLP, tanh output, MSE (CORL)", "state"),
    _built_in("td3bc-state", "td3bc:TD3BCAgent", "td3bc:TD3BCStateConfig", True, "td3bc",
              "TD3+BC on states (Fujimoto and Gu 2021; DrQ+BC's update, TD3's choices)", "state"),
)
# fmt: on

_REGISTRY: dict[str, BaselineSpec] = {}
# Installed plugins' entry points by name, found at start-up and loaded when first asked for
# (a list: two distributions may declare one name, which is an error when it is asked for).
_PENDING: dict[str, list[Any]] = {}
_builtins = {"loaded": False}


def register(spec: BaselineSpec) -> BaselineSpec:
    """Add a baseline; a name registered twice is an error, never a silent override.

    Called from a user's script before ``benchmark.run.main()``, it registers an external
    baseline (``origin`` "script" unless given); the name of a built-in or of an installed
    plugin is refused.
    """
    _ensure_builtins()  # so an external name is checked against the built-ins'
    if not spec.origin:
        spec = dataclasses.replace(spec, origin="script")
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
    spec = load_reference(reference)
    if _REGISTRY.get(spec.name) == spec:
        return spec  # resolved before in this process
    return register(spec)


def _ensure_builtins() -> None:
    if _builtins["loaded"]:
        return
    _builtins["loaded"] = True
    _REGISTRY.update({spec.name: spec for spec in BUILT_INS})
    _PENDING.update(discover_entry_points())
