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
    """

    name: str
    config: str
    agent: str
    offline: bool
    summary: str

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


_REGISTRY: dict[str, BaselineSpec] = {}


def register(spec: BaselineSpec) -> BaselineSpec:
    """Add a baseline; a name registered twice is an error, never a silent override."""
    if spec.name in _REGISTRY:
        raise ValueError(f"baseline {spec.name!r} is already registered")
    if spec.name == "all":
        raise ValueError("'all' is reserved: it expands to every registered baseline")
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
    """``"all"`` or a comma-separated list of names -> specs (unknown names raise, listing valid)."""
    _ensure_builtins()
    if selection.strip() == "all":
        return list(_REGISTRY.values())
    chosen = [part.strip() for part in selection.split(",") if part.strip()]
    if not chosen:
        raise ValueError(
            f"no baseline named in {selection!r}; valid names: all, {', '.join(_REGISTRY)}"
        )
    return [get(name) for name in chosen]


def _ensure_builtins() -> None:
    # The built-in baselines register themselves in baselines/__init__.py (strings only).
    importlib.import_module("baselines")
