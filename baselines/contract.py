"""The contract between agents and harness: what both sides know of each other, and nothing else.

It imports nothing of VORB (and neither torch nor numpy at run time), so an agent that imports
only this module and ``baselines/common/`` can be written, read and tested without the harness,
and the harness can list baselines (``--help``, ``--plan``) without importing an agent.

- :data:`ObsKind`: what an agent observes, one name (``obs_kind``) and one list of values
  (:data:`OBS_KINDS`); results files record it in their ``observation`` column.
- :class:`TransitionBatch`: the one batch type every agent's ``update`` receives.
- :class:`Agent`: the methods the harness calls on an agent; it never reaches further inside.
- Field ranges (:data:`Count`, :data:`Positive`...): a config field's valid values, declared as
  its type (``batch_size: Count = 128``) and checked by :func:`check` before any cell starts.
- :class:`BaselineSpec`: how the registry names a baseline: its config and agent classes as
  ``"module:Class"`` strings, loaded on first use (:func:`load`).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch

# -- the observation kind -----------------------------------------------------------------------
ObsKind = Literal["pixels", "state"]
OBS_KINDS: tuple[ObsKind, ...] = ("pixels", "state")
"""``pixels``: uint8 stacks of 3 RGB frames, (9, 84, 84); ``state``: the walker's proprioceptive
state, float32 (24,) (offline: normalised by the dataset's mean and std). The environment's
observation dict uses the same names as keys."""


def obs_kind_of(obs_shape: Sequence[int]) -> ObsKind:
    """The kind of an observation shape: ``state`` for (D,), ``pixels`` for (C, H, W)."""
    if len(obs_shape) == 1:
        return "state"
    if len(obs_shape) == 3:
        return "pixels"
    raise ValueError(f"observation shape {tuple(obs_shape)} is neither (D,) nor (C, H, W)")


# -- the batch and the agent ---------------------------------------------------------------------
@dataclass(frozen=True)
class TransitionBatch:
    """A batch of transitions (the one batch type every baseline consumes).

    obs, next_obs: uint8 (B, 3 * stack, H, W) frame stacks, channels first, oldest frame first;
    or float32 (B, D) states. action: float32 (B, action_dim). reward: float32 (B, 1).
    not_done: float32 (B, 1), 0 only where the episode *terminated* (time-limit truncation keeps
    bootstrapping, as it should).
    """

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    not_done: torch.Tensor

    def to(self, device: torch.device | str) -> TransitionBatch:
        return TransitionBatch(
            *(
                t.to(device, non_blocking=True)
                for t in (self.obs, self.action, self.reward, self.next_obs, self.not_done)
            )
        )

    def __len__(self) -> int:
        return self.obs.shape[0]


@runtime_checkable
class Agent(Protocol):
    """What every baseline implements, built as ``Agent(config, obs_shape, action_dim, device)``
    (docs/agent-contract.md); ``value(obs) -> float`` (a critic's estimate) is optional."""

    def update(self, batch: TransitionBatch) -> dict[str, Any]:
        """One gradient update on a (CPU or device) batch; returns scalar metrics (numbers or
        0-d tensors, which the harness reads once per evaluation)."""
        ...

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """uint8 (C*stack, H, W) frames, or a float32 (D,) normalised state -> action in [-1, 1]."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


# -- field ranges --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    """``low <= value <= high`` (either bound open or absent)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value: Any) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        high = self.high
        return high is None or (value < high if self.high_open else value <= high)

    def __str__(self) -> str:
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return (
            f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
            f"{')' if self.high_open else ']'}"
        )


@dataclass(frozen=True)
class Choice:
    options: tuple[Any, ...]

    def contains(self, value: Any) -> bool:
        return value in self.options

    def __str__(self) -> str:
        return f"one of {', '.join(map(str, self.options))}"


Count = Annotated[int, Range(low=1)]  # sizes, counts, periods
NonNegativeInt = Annotated[int, Range(low=0)]  # counts that may be 0 (padding, warm-up steps)
Positive = Annotated[float, Range(low=0, low_open=True)]  # learning rates, temperatures, times
NonNegative = Annotated[float, Range(low=0)]  # loss weights, noise scales
Fraction = Annotated[float, Range(0, 1, low_open=True)]  # soft-update rates (taus): (0, 1]
Discount = Annotated[float, Range(0, 1)]
Beta = Annotated[float, Range(0, 1, high_open=True)]  # Adam's beta1


class RangeError(ValueError):
    """A config or profile field holds a value outside its declared range."""


def field_ranges(cls: type) -> dict[str, Range | Choice]:
    """Field name -> declared range of a dataclass, the most derived declaration with one."""
    found: dict[str, Range | Choice] = {}
    for klass in cls.__mro__:
        own = inspect.get_annotations(klass)
        if not own or not dataclasses.is_dataclass(klass):
            continue
        hints = typing.get_type_hints(klass, include_extras=True)
        for name in own:
            if name not in found and (declared := _range_of(hints[name])) is not None:
                found[name] = declared
    return found


def _range_of(hint: Any) -> Range | Choice | None:
    if typing.get_origin(hint) is Annotated:
        return next((m for m in hint.__metadata__ if isinstance(m, Range | Choice)), None)
    if typing.get_origin(hint) is typing.Literal:
        return Choice(typing.get_args(hint))
    return None


def check(instance: Any, owner: str) -> None:
    """Raise :class:`RangeError` naming every field of ``instance`` outside its range."""
    bad = [
        f"{name}={getattr(instance, name)!r} (valid: {declared})"
        for name, declared in field_ranges(type(instance)).items()
        if getattr(instance, name) is not None and not declared.contains(getattr(instance, name))
    ]
    if bad:
        raise RangeError(f"{owner}: out of range: {'; '.join(bad)}")


# -- a baseline's registration -------------------------------------------------------------------
BUILT_IN = "built-in"
# Selection words of --algos besides names: every baseline, or those of one observation kind.
SELECTIONS = {
    "all": "every registered baseline, pixels and state",
    "pixels": "the pixel baselines",
    "state": "the state baselines",
}


def load(reference: str) -> Any:
    """``"module:Attribute"`` or ``"module:Class.Attribute"`` -> the object (imported now)."""
    module_name, _, path = reference.partition(":")
    found: Any = importlib.import_module(module_name)
    for attribute in path.split("."):
        found = getattr(found, attribute)
    return found


@dataclass(frozen=True)
class BaselineSpec:
    """How the harness finds, configures and builds one baseline.

    name: stable identifier used on the command line and in every results row.
    config: ``"module:Class"`` of the baseline's frozen config dataclass (defaults = paper values).
    agent: ``"module:Class"`` of its agent, built as ``Agent(config, obs_shape, action_dim, device)``.
    offline: True when it trains from a dataset; False when it interacts with the environment
        (then it runs once per seed, not once per dataset).
    summary: one line for ``--help``.
    obs_kind: what the agent observes (:data:`ObsKind`). Every results row records it.
    family: the algorithm family shared by a pixel and a state baseline (``bc``, ``td3bc``,
        ``sac-offline``...): the report's pixel-state gap pairs baselines by it (default: the
        name, a family of one).
    origin: where it was registered from: ``built-in`` (``benchmark/harness/registry.py``),
        ``entry point``, ``reference`` (``--algos module:Class``) or ``script``; registering
        fills it in when left empty. Every origin but ``built-in`` is external.
    entry_point: for plugins, how they were found (``vorb.baselines: name = module:attr``).
    distribution: the installed distribution (package) that provides it, if any.
    """

    name: str
    config: str
    agent: str
    offline: bool
    summary: str
    obs_kind: ObsKind = "pixels"
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
        return load(self.config)

    def agent_class(self) -> type:
        return load(self.agent)

    def default_config(self, **overrides: Any) -> Any:
        return dataclasses.replace(self.config_class()(), **overrides)
