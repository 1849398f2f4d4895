"""D4RL-style access to VORB datasets: ``get_dataset``, ``qlearning_dataset``, normalised scores.

Code written for D4RL (CORL and most offline RL repositories) reads a dict of numpy arrays:

- ``get_dataset(id)``: ``observations``, ``actions``, ``rewards``, ``terminals`` (true
  terminations), ``timeouts`` (time-limit ends), one row per transition;
- ``qlearning_dataset(id)``: the same plus ``next_observations``.

Pixel observations are uint8 channel-first stacks of ``frame_stack`` frames, oldest first; at an
episode's start the first frame is repeated, as V-D4RL's loader and VORB's
:class:`benchmark.data.sampler.FrameReplay` do. ``observation="state"`` gives the
proprioceptive state (float32) instead, as D4RL's MuJoCo datasets have, read without the frames:
it works on a state-only build (``vorb-state/...``, the state track's data) as on a pixel one.
``with_state=True`` adds the state beside the pixels as ``states`` (and ``next_states``).

Two differences from ``d4rl.qlearning_dataset``: D4RL's files lack the observation after the last
step of an episode, so D4RL drops each time-limit transition; VORB stores it, so every transition
is kept, with its true next observation. And ``timeouts`` is also returned by
``qlearning_dataset`` (code that does not use it ignores it). Walker episodes never terminate:
``terminals`` is all False and each episode's last transition is a timeout.

Memory, for a 100,000-transition dataset of 200 episodes at frame stack 3 (84x84x3 frames of
21,168 bytes): eager ``observations`` take 100,000 x 9 x 84 x 84 = 6.35 GB and
``next_observations`` as much again (12.7 GB together). Two ways that hold each frame once
(100,200 frames, 2.12 GB, plus 4.8 MB of indices):

- ``lazy=True``: ``observations`` and ``next_observations`` are :class:`StackedFrames` views that
  share one frame array and stack rows only when indexed (``data["observations"][batch]``);
  ``np.asarray(view)`` materialises one;
- :func:`load_frame_indexed`: the frames plus ``(N, stack)`` index arrays, for code that gathers
  its own batches (``frames[observation_index[batch]]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from benchmark.data.sampler import FRAME_STACK
from benchmark.datasets.store import load_or_explain

OBSERVATIONS = ("pixels", "state")
Observation = Literal["pixels", "state"]


class StackedFrames:
    """A lazy ``(N, stack * C, H, W)`` uint8 array: stacks are gathered when indexed.

    ``view[i]``, ``view[a:b]`` and ``view[index_array]`` return numpy arrays; ``len(view)``,
    ``view.shape`` and ``view.dtype`` behave as an array's; ``np.asarray(view)`` materialises it.
    """

    def __init__(self, frames: np.ndarray, index: np.ndarray) -> None:
        self.frames, self.index = frames, index  # (F, C, H, W) uint8, (N, stack) int64
        channels, height, width = frames.shape[1:]
        self.shape = (len(index), index.shape[1] * channels, height, width)
        self.dtype = frames.dtype
        self.ndim = 4

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        rows = self.index[key]  # (..., stack)
        return self.frames[rows].reshape(*rows.shape[:-1], *self.shape[1:])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        stacked = self[:]
        return stacked if dtype is None else stacked.astype(dtype)


@dataclass(frozen=True)
class FrameIndexedDataset:
    """A dataset's frames once, and per-transition index arrays into them.

    frames: uint8 (F, C, H, W), every episode's T + 1 frames in episode order (F = N + episodes).
    states: float32 (F, state_dim), the proprioceptive state at each frame.
    observation_index, next_observation_index: int64 (N, stack), rows of ``frames`` making the
    stacked observation of transition i and its successor (oldest first, clamped at the episode's
    first frame). actions float32 (N, A); rewards float32 (N,); terminals, timeouts bool (N,).
    """

    frames: np.ndarray
    states: np.ndarray
    observation_index: np.ndarray
    next_observation_index: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def episode_ends(self) -> np.ndarray:
        """bool (N,): the last transition of each episode (terminal, timeout or end of data)."""
        return self.terminals | self.timeouts

    def observations(self, lazy: bool = False) -> np.ndarray | StackedFrames:
        view = StackedFrames(self.frames, self.observation_index)
        return view if lazy else view[:]

    def next_observations(self, lazy: bool = False) -> np.ndarray | StackedFrames:
        view = StackedFrames(self.frames, self.next_observation_index)
        return view if lazy else view[:]


def _check_observation(observation: str) -> None:
    if observation not in OBSERVATIONS:
        raise ValueError(f"observation must be one of {OBSERVATIONS}, got {observation!r}")


def _check_frame_stack(frame_stack: int) -> None:
    if not isinstance(frame_stack, int) or frame_stack < 1:
        raise ValueError(f"frame_stack must be a positive integer, got {frame_stack!r}")


@dataclass(frozen=True)
class _Episodes:
    """Every episode's arrays read once, in episode order (F = N + episodes observation rows)."""

    frames: np.ndarray | None  # uint8 (F, C, H, W); None when read without frames
    states: np.ndarray  # float32 (F, state_dim)
    obs_row: np.ndarray  # int64 (N,): row of transition i's observation
    start: np.ndarray  # int64 (N,): row of its episode's first observation
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray


def _read_episodes(dataset: Any, frames: bool, progress: bool) -> _Episodes:
    """The dataset's episodes as flat arrays; ``frames=False`` never touches the pixels (a
    state-only build has none, and a pixel build's frames are most of its size)."""
    transitions, episodes = dataset.total_steps, dataset.total_episodes
    rows = transitions + episodes  # each episode stores T + 1 observations
    state_dim = dataset.observation_space["state"].shape[0]
    pixels = None
    if frames:
        height, width, channels = dataset.observation_space["pixels"].shape
        pixels = np.empty((rows, channels, height, width), dtype=np.uint8)
    read = _Episodes(
        frames=pixels,
        states=np.empty((rows, state_dim), dtype=np.float32),
        obs_row=np.empty(transitions, dtype=np.int64),
        start=np.empty(transitions, dtype=np.int64),
        actions=np.empty((transitions, *dataset.action_space.shape), dtype=np.float32),
        rewards=np.empty(transitions, dtype=np.float32),
        terminals=np.empty(transitions, dtype=bool),
        timeouts=np.empty(transitions, dtype=bool),
    )
    row, step = 0, 0
    for episode in tqdm(dataset.iterate_episodes(), total=episodes, disable=not progress):
        steps = len(episode.actions)
        if pixels is not None:
            pixels[row : row + steps + 1] = episode.observations["pixels"].transpose(0, 3, 1, 2)
        read.states[row : row + steps + 1] = episode.observations["state"]
        span = slice(step, step + steps)
        read.obs_row[span] = np.arange(row, row + steps)
        read.start[span] = row
        read.actions[span] = episode.actions
        read.rewards[span] = episode.rewards
        read.terminals[span] = episode.terminations
        read.timeouts[span] = episode.truncations
        # An episode that stops with neither flag (the data ran out) ends like a time limit.
        read.timeouts[step + steps - 1] |= not read.terminals[step + steps - 1]
        row, step = row + steps + 1, step + steps
    return read


def _has_pixels(dataset: Any) -> bool:
    return "pixels" in dataset.observation_space.spaces


def _no_pixels_error(dataset_id: str) -> ValueError:
    return ValueError(
        f"{dataset_id} is a state-only build (its observations: state, physics; no pixels): "
        "use observation='state' (with_state needs pixels too)"
    )


def load_frame_indexed(
    dataset_id: str, frame_stack: int = FRAME_STACK, progress: bool = False
) -> FrameIndexedDataset:
    """Read a VORB dataset once into a :class:`FrameIndexedDataset` (each frame stored once)."""
    _check_frame_stack(frame_stack)
    dataset = load_or_explain(dataset_id)
    if not _has_pixels(dataset):
        raise _no_pixels_error(dataset_id)
    read = _read_episodes(dataset, frames=True, progress=progress)
    offsets = read.obs_row[:, None] + np.arange(-frame_stack + 1, 1)
    assert read.frames is not None
    return FrameIndexedDataset(
        frames=read.frames,
        states=read.states,
        observation_index=np.maximum(offsets, read.start[:, None]),
        next_observation_index=np.maximum(offsets + 1, read.start[:, None]),
        actions=read.actions,
        rewards=read.rewards,
        terminals=read.terminals,
        timeouts=read.timeouts,
    )


def _state_dict(dataset_id: str, nexts: bool) -> dict[str, Any]:
    """D4RL's dict with state observations, read without frames: works on a state-only build
    (``vorb-state/...``) and on a pixel build alike."""
    read = _read_episodes(load_or_explain(dataset_id), frames=False, progress=False)
    out = {"observations": read.states[read.obs_row]}
    if nexts:
        out["next_observations"] = read.states[read.obs_row + 1]
    return out | {
        "actions": read.actions,
        "rewards": read.rewards,
        "terminals": read.terminals,
        "timeouts": read.timeouts,
    }


def _pixel_observations(
    data: FrameIndexedDataset, with_state: bool, lazy: bool, nexts: bool
) -> dict[str, Any]:
    keys = [("observations", data.observation_index)]
    if nexts:
        keys.append(("next_observations", data.next_observation_index))
    out: dict[str, Any] = {}
    for key, index in keys:
        view = StackedFrames(data.frames, index)
        out[key] = view if lazy else view[:]
        if with_state:  # the newest frame's state
            out[key.replace("observations", "states")] = data.states[index[:, -1]]
    return out


def _transitions(data: FrameIndexedDataset) -> dict[str, np.ndarray]:
    return {
        "actions": data.actions,
        "rewards": data.rewards,
        "terminals": data.terminals,
        "timeouts": data.timeouts,
    }


def get_dataset(
    dataset_id: str,
    frame_stack: int = FRAME_STACK,
    observation: Observation = "pixels",
    with_state: bool = False,
    lazy: bool = False,
) -> dict[str, Any]:
    """D4RL's ``env.get_dataset()``: observations, actions, rewards, terminals, timeouts.

    One row per transition. See the module docstring for the shapes and the memory it costs.
    """
    return _d4rl_dict(dataset_id, frame_stack, observation, with_state, lazy, nexts=False)


def qlearning_dataset(
    dataset_id: str,
    frame_stack: int = FRAME_STACK,
    observation: Observation = "pixels",
    with_state: bool = False,
    lazy: bool = False,
) -> dict[str, Any]:
    """D4RL's ``d4rl.qlearning_dataset(env)``: :func:`get_dataset` plus ``next_observations``.

    Every transition is kept (D4RL drops time-limit ones for want of their next observation).
    """
    return _d4rl_dict(dataset_id, frame_stack, observation, with_state, lazy, nexts=True)


def _d4rl_dict(
    dataset_id: str,
    frame_stack: int,
    observation: Observation,
    with_state: bool,
    lazy: bool,
    nexts: bool,
) -> dict[str, Any]:
    _check_observation(observation)
    _check_frame_stack(frame_stack)
    if observation == "state":
        return _state_dict(dataset_id, nexts)
    data = load_frame_indexed(dataset_id, frame_stack)
    return _pixel_observations(data, with_state, lazy, nexts=nexts) | _transitions(data)


def get_normalized_score(dataset_id: str, returns: float | np.ndarray) -> float | np.ndarray:
    """D4RL's ``env.get_normalized_score(returns)``: 0 = random, 1 = expert (x100 for papers).

    Uses the dataset's ``ref_min_score`` and ``ref_max_score`` (Minari's metadata).
    """
    import minari

    normalised = minari.get_normalized_score(load_or_explain(dataset_id), np.asarray(returns))
    return float(normalised) if np.ndim(normalised) == 0 else normalised
