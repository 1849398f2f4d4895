"""The state track's replay: transitions of proprioceptive states, and their normalisation.

The counterpart of :class:`~benchmark.data.sampler.FrameReplay` for ``obs_kind == "state"``: the same
``sample(batch_size, generator) -> TransitionBatch`` and online ``start_episode``/``add`` calls,
with ``obs``/``next_obs`` float32 (B, 24) instead of uint8 frame stacks. States are small (96
bytes), so each transition stores its own ``obs`` and ``next_obs``: no index arithmetic, and a
ring is a plain modulo. Storage grows geometrically up to ``capacity``, so a 1M-transition SAC
replay costs memory only for what it holds.

Offline, states are normalised by the dataset's mean and std (CORL's ``compute_mean_std``, eps
1e-3 added to the std); the same :class:`StateNormalizer` is applied to every evaluation
observation and recorded in each cell's metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.data.sampler import TensorReplay, TransitionBatch

NORMALIZER_EPS = 1e-3  # CORL (algorithms/offline/*.py compute_mean_std): std + 1e-3


@dataclass(frozen=True)
class StateNormalizer:
    """``(state - mean) / std`` as float32; the identity when built with :meth:`identity`."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def of(cls, states: np.ndarray, eps: float = NORMALIZER_EPS) -> StateNormalizer:
        """Mean and std (plus ``eps``) over the rows of ``states`` (N, D)."""
        states = np.asarray(states, dtype=np.float64)
        return cls(tuple(states.mean(0).tolist()), tuple((states.std(0) + eps).tolist()))

    @classmethod
    def identity(cls, dim: int) -> StateNormalizer:
        return cls((0.0,) * dim, (1.0,) * dim)

    def __call__(self, states: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.mean, dtype=np.float64)
        std = np.asarray(self.std, dtype=np.float64)
        return ((np.asarray(states, dtype=np.float64) - mean) / std).astype(np.float32)

    def to_json(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}


class StateObserver:
    """What the agent sees of a running episode on states: the normalised current state
    (:class:`~benchmark.data.sampler.FrameStacker`'s ``reset``/``push`` interface)."""

    def __init__(self, normalizer: StateNormalizer) -> None:
        self.normalizer = normalizer

    def reset(self, state: np.ndarray) -> np.ndarray:
        return self.normalizer(state)

    def push(self, state: np.ndarray) -> np.ndarray:
        return self.normalizer(state)


class StateReplay(TensorReplay):
    """Transitions of states on ``device``; offline filled from a dataset, online a ring."""

    _FIELDS = ("_obs", "_actions", "_rewards", "_next_obs", "_not_done")

    def __init__(
        self,
        capacity: int,
        state_dim: int,
        action_dim: int,
        device: torch.device | str = "cpu",
        normalizer: StateNormalizer | None = None,
    ) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity, self.state_dim, self.action_dim = capacity, state_dim, action_dim
        self.normalizer = normalizer or StateNormalizer.identity(state_dim)
        self.device = torch.empty(0, device=device).device
        self._allocate(min(capacity, 1024))
        self.transitions_added = 0
        self._state: np.ndarray | None = None  # the current episode's latest (raw) state

    def _allocate(self, rows: int) -> None:
        widths = (self.state_dim, self.action_dim, 1, self.state_dim, 1)
        fresh = [torch.zeros((rows, w), device=self.device) for w in widths]
        for name, tensor in zip(self._FIELDS, fresh, strict=True):
            old = getattr(self, name, None)
            if old is not None:
                tensor[: len(old)] = old
            setattr(self, name, tensor)

    def _reserve(self, rows: int) -> None:
        size = len(self._obs)
        if rows > size and size < self.capacity:
            self._allocate(min(self.capacity, max(rows, 2 * size)))

    @property
    def num_transitions(self) -> int:
        return min(self.transitions_added, self.capacity)

    @property
    def obs_shape(self) -> tuple[int]:
        return (self.state_dim,)

    # -- writing -------------------------------------------------------------------------------
    def start_episode(self, first_state: np.ndarray) -> None:
        self._state = np.asarray(first_state)

    def add(
        self, action: np.ndarray, reward: float, terminated: bool, next_state: np.ndarray
    ) -> None:
        """Append one transition of the current episode; when full, the oldest gives way."""
        if self._state is None:
            raise RuntimeError("call start_episode() before add()")
        self._reserve(self.transitions_added + 1)
        slot = self.transitions_added % self.capacity
        self._write(
            slice(slot, slot + 1),
            self._state[None],
            np.asarray(action)[None],
            np.asarray([reward]),
            np.asarray(next_state)[None],
            np.asarray([terminated]),
        )
        self._state = np.asarray(next_state)
        self.transitions_added += 1

    def add_episode(
        self, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminations: Any
    ) -> None:
        """A whole episode: ``states`` has one more row than ``actions``; it must fit."""
        steps = len(actions)
        if len(states) != steps + 1:
            raise ValueError(f"an episode of {steps} actions needs {steps + 1} states")
        if self.transitions_added + steps > self.capacity:
            raise RuntimeError(f"episode of {steps} steps does not fit in {self.capacity}")
        self._reserve(self.transitions_added + steps)
        span = slice(self.transitions_added, self.transitions_added + steps)
        self._write(span, states[:-1], actions, rewards, states[1:], terminations)
        self.transitions_added += steps

    def _write(
        self,
        span: slice,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminations: Any,
    ) -> None:
        as_tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
        self._obs[span] = as_tensor(self.normalizer(obs))
        self._actions[span] = as_tensor(actions)
        self._rewards[span, 0] = as_tensor(rewards)
        self._next_obs[span] = as_tensor(self.normalizer(next_obs))
        self._not_done[span, 0] = 1.0 - as_tensor(terminations)

    # -- reading -------------------------------------------------------------------------------
    def get(self, indices: torch.Tensor) -> TransitionBatch:
        """The held transitions at ``indices`` (int64); :meth:`sample` draws them uniformly."""
        return TransitionBatch(
            obs=self._obs[indices],
            action=self._actions[indices],
            reward=self._rewards[indices],
            next_obs=self._next_obs[indices],
            not_done=self._not_done[indices],
        )

    # -- checkpoints (small: the whole held replay) ---------------------------------------------
    def attach_store(self, folder: Path | str) -> None:
        """Nothing to attach: state checkpoints hold the replay itself (a few MB)."""

    def checkpoint_saved(self) -> None:
        """Nothing to clean up (see :meth:`attach_store`)."""

    def state_dict(self) -> dict[str, Any]:
        held = self.num_transitions
        return {
            "transitions_added": self.transitions_added,
            "arrays": {name: getattr(self, name)[:held].cpu().clone() for name in self._FIELDS},
            "current_state": None if self._state is None else self._state.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        held = len(state["arrays"]["_obs"])
        for name in self._FIELDS:  # fresh storage: what this replay held before is replaced
            setattr(self, name, None)
        self._allocate(max(held, min(self.capacity, 1024)))
        for name in self._FIELDS:
            getattr(self, name)[:held] = state["arrays"][name].to(self.device)
        self.transitions_added = int(state["transitions_added"])
        self._state = state["current_state"]

    # -- construction from a Minari dataset ------------------------------------------------------
    @classmethod
    def from_minari(
        cls, dataset: Any, device: torch.device | str = "cpu", normalize: bool = True
    ) -> StateReplay:
        """Every transition of a VORB dataset's ``state`` observations (pixel or state-only
        dataset alike), normalised by their mean and std unless ``normalize=False``."""
        episodes = list(dataset.iterate_episodes())
        states = [episode.observations["state"] for episode in episodes]
        normalizer = (
            StateNormalizer.of(np.concatenate([s[:-1] for s in states]))
            if normalize
            else StateNormalizer.identity(states[0].shape[1])
        )
        total = sum(len(episode.actions) for episode in episodes)
        action_dim = int(np.prod(dataset.action_space.shape))
        replay = cls(total, states[0].shape[1], action_dim, device, normalizer)
        for episode, episode_states in zip(episodes, states, strict=True):
            replay.add_episode(
                episode_states, episode.actions, episode.rewards, episode.terminations
            )
        return replay
