"""One registry of baselines: ``name -> BaselineSpec``.

Specs name their config and agent classes as ``"module:attribute"`` strings, so listing the
registry (``--help``, ``--plan``) never imports torch; the classes load on first use.
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
    """

    name: str
    config: str
    agent: str
    offline: bool
    summary: str
    obs_kind: str = "pixels"

    def __post_init__(self) -> None:
        if self.obs_kind not in OBS_KINDS:
            raise ValueError(
                f"baseline {self.name!r}: obs_kind {self.obs_kind!r} is not one of {OBS_KINDS}"
            )

    def config_class(self) -> type:
        return _load(self.config)

    def agent_class(self) -> type:
        return _load(self.agent)

    def default_config(self, **overrides: Any) -> Any:
        import dataclasses

        return dataclasses.replace(self.config_class()(), **overrides)


def _load(reference: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


OBS_KINDS = ("pixels", "state")
# Selection words of --algos besides names: every baseline, or those of one observation kind.
SELECTIONS = {
    "all": "every registered baseline, pixels and state",
    "pixels": "the pixel baselines",
    "state": "the state baselines",
}

_REGISTRY: dict[str, BaselineSpec] = {}


def register(spec: BaselineSpec) -> BaselineSpec:
    """Add a baseline; a name registered twice is an error, never a silent override."""
    if spec.name in _REGISTRY:
        raise ValueError(f"baseline {spec.name!r} is already registered")
    if spec.name in SELECTIONS:
        raise ValueError(
            f"{spec.name!r} is reserved: --algos {spec.name} selects {SELECTIONS[spec.name]}"
        )
    _REGISTRY[spec.name] = spec
    return spec


def names() -> list[str]:
    """Every registered baseline, in registration order."""
    _ensure_builtins()
    return list(_REGISTRY)


def get(name: str) -> BaselineSpec:
    _ensure_builtins()
    if name not in _REGISTRY:
        raise KeyError(f"unknown baseline {name!r}; valid names: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def resolve(selection: str) -> list[BaselineSpec]:
    """``"all"``, ``"pixels"``, ``"state"`` or a comma-separated list of names -> specs
    (unknown names raise, listing the valid ones)."""
    _ensure_builtins()
    word = selection.strip()
    if word == "all":
        return list(_REGISTRY.values())
    if word in OBS_KINDS:
        return [spec for spec in _REGISTRY.values() if spec.obs_kind == word]
    chosen = [part.strip() for part in selection.split(",") if part.strip()]
    if not chosen:
        raise ValueError(
            f"no baseline named in {selection!r}; valid: {', '.join(SELECTIONS)}, "
            f"{', '.join(_REGISTRY)}"
        )
    return [get(name) for name in chosen]


def _ensure_builtins() -> None:
    # The built-in baselines register themselves in baselines/__init__.py (strings only).
    importlib.import_module("baselines")
