"""In-memory frame store with frame-stacked sampling, for offline datasets and online replay.

Each frame is stored once, channels first (uint8). A transition ``t`` of an episode whose first
frame sits at ``start`` has observation frames ``start+t-k+1 .. start+t`` (clamped at ``start``:
the earliest frames repeat the first frame, as a frame-stacking env does after reset) and next
observation frames shifted by one. Stacks are gathered at sample time from indices, so a dataset
of N transitions costs N + episodes frames, not 2 x stack x N.

Online, the replay is a ring (the oldest transitions give way) and checkpoints incrementally
into chunk files (:mod:`benchmark.data.replay_store`) when a folder is attached.
"""

from __future__ import annotations

import copy
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baselines.contract import TransitionBatch
from benchmark.data.replay_store import ChunkStore

FRAME_STACK = 3  # V-D4RL and CURL: 3 frames at load time


class TensorReplay:
    """What the frame and the state replay share: tensors on ``device`` named by ``_FIELDS``,
    uniform sampling and moving to another device. A subclass gives ``num_transitions`` and
    ``get(indices) -> TransitionBatch``."""

    _FIELDS: tuple[str, ...] = ()
    device: torch.device

    def __len__(self) -> int:
        return self.num_transitions

    def sample(self, batch_size: int, generator: torch.Generator) -> TransitionBatch:
        """Uniform over the live transitions (with replacement); the generator (on the replay's
        device) makes the draw reproducible."""
        if self.num_transitions == 0:
            raise RuntimeError("cannot sample from an empty replay")
        indices = torch.randint(
            0, self.num_transitions, (batch_size,), generator=generator, device=self.device
        )
        return self.get(indices)

    def to(self, device: torch.device | str) -> Any:
        """This replay on ``device`` (itself if already there; else a moved copy)."""
        target = torch.empty(0, device=device).device
        if target == self.device:
            return self
        moved = copy.copy(self)
        moved.device = target
        for name in self._FIELDS:
            setattr(moved, name, getattr(self, name).to(target))
        return moved


class FrameReplay(TensorReplay):
    """Frames stored once; transitions index into them; batches stack at sample time.

    Used two ways: filled once from a Minari dataset (:meth:`from_minari`, :meth:`add_episode`;
    at most ``capacity`` transitions), or appended to by an online agent (:meth:`start_episode`,
    :meth:`add`) as a ring: past ``capacity`` transitions the oldest one gives way to the new one.

    Indices are global (they count every frame / transition ever pushed); a frame lives in slot
    ``index % frame_capacity``, a transition in ``index % capacity``. The frame ring grows, never
    overwriting a frame a live transition's stacks read: it starts at ``capacity`` plus 1% (room
    for one extra frame per episode of 100+ steps), so it only grows for shorter episodes.
    Everything lives on ``device`` (sampling with a generator on that device).
    """

    _FIELDS = ("_frames", "_actions", "_rewards", "_not_done", "_obs_frame", "_episode_start")

    def __init__(
        self,
        capacity: int,
        frame_shape: tuple[int, int, int],
        action_dim: int,
        frame_stack: int = FRAME_STACK,
        device: torch.device | str = "cpu",
        frame_capacity: int | None = None,
    ) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        slots = frame_capacity or capacity + capacity // 100 + frame_stack + 1
        self._frames = torch.empty((slots, *frame_shape), dtype=torch.uint8, device=device)
        self.device = self._frames.device  # resolved: "cuda" -> "cuda:0"
        table = lambda *shape, dtype=torch.float32: torch.empty(  # noqa: E731
            (capacity, *shape), dtype=dtype, device=self.device
        )
        self._actions, self._rewards, self._not_done = table(action_dim), table(1), table(1)
        self._obs_frame = table(dtype=torch.int64)  # global frame index of obs t
        self._episode_start = table(dtype=torch.int64)  # its episode's first frame
        # Host copy of the first frame each transition's stacks read: ring bookkeeping without a
        # device round trip per step.
        self._first_read = np.zeros(capacity, dtype=np.int64)
        self.capacity, self.frame_stack, self.action_dim = capacity, frame_stack, action_dim
        self.num_frames = 0  # frames ever pushed
        self.transitions_added = 0  # transitions ever added
        self.oldest = 0  # global index of the oldest live transition
        self._current_start = -1
        self._store: ChunkStore | None = None

    @property
    def num_transitions(self) -> int:
        """Live transitions: at most ``capacity``."""
        return self.transitions_added - self.oldest

    @property
    def frame_capacity(self) -> int:
        return self._frames.shape[0]

    # -- writing -------------------------------------------------------------------------------
    def _first_live_frame(self) -> int:
        """The oldest frame anything live may still read."""
        if self.num_transitions:
            return int(self._first_read[self.oldest % self.capacity])
        return self._current_start if self._current_start >= 0 else self.num_frames

    def _reserve_frames(self, needed: int) -> None:
        """Room for frames up to global index ``needed`` without overwriting a live one; grows
        geometrically (amortised O(1) per frame, never O(n) per episode)."""
        low, size = self._first_live_frame(), self.frame_capacity
        if needed - low <= size:
            return
        grown_size = max(needed - low, size + size // 4 + 16)
        shape = (grown_size, *self._frames.shape[1:])
        grown = torch.empty(shape, dtype=torch.uint8, device=self.device)
        if self.num_frames <= size:  # never wrapped: slots are global indices
            grown[: self.num_frames] = self._frames[: self.num_frames]
        else:
            live = torch.arange(low, self.num_frames, device=self.device)
            grown[live % grown_size] = self._frames[live % size]
        self._frames = grown

    def _push_frame(self, frame_hwc: np.ndarray) -> int:
        self._reserve_frames(self.num_frames + 1)
        chw = torch.from_numpy(np.ascontiguousarray(frame_hwc)).permute(2, 0, 1)
        self._frames[self.num_frames % self.frame_capacity] = chw
        self.num_frames += 1
        return self.num_frames - 1

    def start_episode(self, first_frame_hwc: np.ndarray) -> None:
        """Begin an episode with the frame the reset returned (HWC uint8)."""
        self._current_start = -1  # the previous episode's start is no longer needed
        self._current_start = self._push_frame(first_frame_hwc)

    def add(
        self, action: np.ndarray, reward: float, terminated: bool, next_frame_hwc: np.ndarray
    ) -> None:
        """Append one transition of the current episode; when full, the oldest gives way."""
        if self._current_start < 0:
            raise RuntimeError("call start_episode() before add()")
        if self.num_transitions == self.capacity:
            self.oldest += 1
        slot = self.transitions_added % self.capacity
        obs_frame = self.num_frames - 1
        self._first_read[slot] = max(obs_frame - self.frame_stack + 1, self._current_start)
        self._push_frame(next_frame_hwc)
        self._obs_frame[slot] = obs_frame
        self._episode_start[slot] = self._current_start
        self._actions[slot] = torch.as_tensor(action, dtype=torch.float32)
        self._rewards[slot] = float(reward)
        self._not_done[slot] = 0.0 if terminated else 1.0
        self.transitions_added += 1

    def add_episode(
        self,
        frames_hwc: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminations: np.ndarray,
    ) -> None:
        """Append a whole episode at once: ``frames_hwc`` has one more entry than ``actions``.

        For datasets: the replay must have room (no ring overwriting here).
        """
        steps = len(actions)
        if len(frames_hwc) != steps + 1:
            raise ValueError(
                f"an episode of {steps} actions needs {steps + 1} frames, got {len(frames_hwc)}"
            )
        if self.transitions_added + steps > self.capacity:
            raise RuntimeError(
                f"episode of {steps} steps does not fit: {self.num_transitions} of "
                f"{self.capacity} transitions used"
            )
        start = self.num_frames
        needed = start + steps + 1
        self._current_start = start  # the episode's frames are live while they are written
        self._reserve_frames(needed)
        # np.array copies: Minari hands out read-only arrays, which torch warns about.
        chw = torch.from_numpy(np.array(frames_hwc)).permute(0, 3, 1, 2)
        if needed <= self.frame_capacity:
            self._frames[start:needed] = chw
        else:
            slots = torch.arange(start, needed, device=self.device) % self.frame_capacity
            self._frames[slots] = chw.to(self.device)
        span = slice(self.transitions_added, self.transitions_added + steps)
        obs_frames = torch.arange(start, start + steps)
        self._obs_frame[span] = obs_frames
        self._episode_start[span] = start
        self._first_read[span] = np.maximum(obs_frames.numpy() - self.frame_stack + 1, start)
        self._actions[span] = torch.from_numpy(np.array(actions, dtype=np.float32))
        self._rewards[span, 0] = torch.from_numpy(np.array(rewards, dtype=np.float32))
        self._not_done[span, 0] = 1.0 - torch.from_numpy(np.array(terminations, dtype=np.float32))
        self.num_frames = needed
        self.transitions_added += steps
        self._current_start = -1

    # -- reading -------------------------------------------------------------------------------
    @property
    def obs_shape(self) -> tuple[int, int, int]:
        """Shape of one stacked observation: (C * stack, H, W)."""
        channels, height, width = self._frames.shape[1:]
        return (channels * self.frame_stack, height, width)

    def get(self, indices: torch.Tensor) -> TransitionBatch:
        """The live transitions at ``indices`` (int64; 0 is the oldest live one), stacked.

        obs and next_obs share ``stack - 1`` frames, so the ``stack + 1`` frames of each
        transition are gathered once and both are views into that one buffer (2.6x faster than
        two gathers; they are not contiguous: use ``reshape``, not ``view``, to flatten them).
        """
        indices = indices.to(self.device)
        if self.oldest:
            indices = (indices + self.oldest) % self.capacity
        obs_frame = self._obs_frame[indices]
        start = self._episode_start[indices]
        offsets = torch.arange(-self.frame_stack + 1, 2, device=self.device)
        frame_index = torch.maximum(obs_frame[:, None] + offsets, start[:, None])
        if self.num_frames > self.frame_capacity:  # wrapped: global index -> ring slot
            frame_index = frame_index % self.frame_capacity
        frames = self._frames.index_select(0, frame_index.flatten())
        frames = frames.view(len(indices), self.frame_stack + 1, *self._frames.shape[1:])
        return TransitionBatch(
            obs=frames[:, :-1].flatten(1, 2),
            action=self._actions[indices],
            reward=self._rewards[indices],
            next_obs=frames[:, 1:].flatten(1, 2),
            not_done=self._not_done[indices],
        )

    def to(self, device: torch.device | str) -> FrameReplay:
        moved = super().to(device)
        if moved is not self:  # the host-side bookkeeping is copied, not shared
            moved._first_read = self._first_read.copy()
        return moved

    # -- persistence (online replay is part of a training checkpoint) ---------------------------
    def attach_store(self, folder: Path | str) -> None:
        """Checkpoint incrementally into ``folder``: each :meth:`state_dict` then writes only the
        frames and transitions new since the previous one, as a chunk file, and returns their
        list. Call :meth:`checkpoint_saved` once that state is safely on disk."""
        self._store = ChunkStore(folder)

    def checkpoint_saved(self) -> None:
        """The latest state_dict is on disk: delete chunks it does not need (bounded disk)."""
        if self._store is not None:
            self._store.collect()

    def _chunk(self, frames_from: int, transitions_from: int) -> dict[str, Any]:
        """Frames and transitions from the given global indices to now (CPU copies)."""
        first_frame = max(frames_from, self._first_live_frame())
        first = max(transitions_from, self.oldest)
        frame_slots = torch.arange(first_frame, self.num_frames) % self.frame_capacity
        slots = torch.arange(first, self.transitions_added) % self.capacity
        pick = lambda table: table[slots.to(self.device)].cpu()  # noqa: E731
        return {
            "frames": [first_frame, self.num_frames],
            "transitions": [first, self.transitions_added],
            "frame_data": self._frames[frame_slots.to(self.device)].cpu(),
            "actions": pick(self._actions),
            "rewards": pick(self._rewards),
            "not_done": pick(self._not_done),
            "obs_frame": pick(self._obs_frame),
            "episode_start": pick(self._episode_start),
        }

    def state_dict(self) -> dict[str, Any]:
        """Counters plus chunks: one in-memory chunk of the whole live replay, or, with a store
        attached, the records of chunk files (writing one for what is new)."""
        state = {
            "capacity": self.capacity,
            "frame_capacity": self.frame_capacity,
            "frame_stack": self.frame_stack,
            "num_frames": self.num_frames,
            "transitions_added": self.transitions_added,
            "oldest": self.oldest,
            "first_live_frame": self._first_live_frame(),
            "current_start": self._current_start,
        }
        store = self._store
        if store is None:
            return {**state, "chunks": [self._chunk(0, 0)]}
        if self.num_frames > store.saved_frames:
            store.write(self._chunk(store.saved_frames, store.saved_transitions))
            store.saved_frames, store.saved_transitions = self.num_frames, self.transitions_added
        return {**state, "chunks": store.keep_only(state["first_live_frame"], self.oldest)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "chunks" not in state:
            raise ValueError(
                "replay checkpoint of the older whole-replay format (no 'chunks'): it cannot be "
                "resumed by this version; delete the cell folder to start it again"
            )
        if state["capacity"] != self.capacity or state["frame_stack"] != self.frame_stack:
            raise ValueError(
                f"checkpoint replay has capacity {state['capacity']} and frame stack "
                f"{state['frame_stack']}; this replay has {self.capacity}, {self.frame_stack}"
            )
        if state["frame_capacity"] != self.frame_capacity:
            shape = (state["frame_capacity"], *self._frames.shape[1:])
            self._frames = torch.empty(shape, dtype=torch.uint8, device=self.device)
        self.num_frames, self.oldest = int(state["num_frames"]), int(state["oldest"])
        self.transitions_added = int(state["transitions_added"])
        self._current_start = int(state["current_start"])
        low = int(state["first_live_frame"])
        covered = [0, 0]
        for chunk in state["chunks"]:
            covered = [a + b for a, b in zip(covered, self._load_chunk(chunk, low), strict=True)]
        if covered != [self.num_frames - low, self.num_transitions]:
            raise ValueError(
                f"replay checkpoint chunks hold {covered[0]} frames and {covered[1]} transitions;"
                f" it needs {self.num_frames - low} and {self.num_transitions}"
            )
        on_disk = all("file" in chunk for chunk in state["chunks"])
        if self._store is not None:
            self._store.records = [dict(c) for c in state["chunks"]] if on_disk else []
            done = (self.num_frames, self.transitions_added) if on_disk else (0, 0)
            self._store.saved_frames, self._store.saved_transitions = done

    def _load_chunk(self, chunk: dict[str, Any], low: int) -> tuple[int, int]:
        """Place one chunk's live part; returns (frames, transitions) placed."""
        if "file" in chunk:
            if self._store is None:
                raise RuntimeError(
                    f"the checkpoint's replay is in chunk files ({chunk['file']}, ...): call "
                    "attach_store(folder) with their folder before load_state_dict"
                )
            chunk = self._store.read(chunk)
        (f0, f1), (t0, t1) = chunk["frames"], chunk["transitions"]
        frames_from, first = max(f0, low), max(t0, self.oldest)
        if f1 > frames_from:
            slots = torch.arange(frames_from, f1) % self.frame_capacity
            self._frames[slots.to(self.device)] = chunk["frame_data"][frames_from - f0 :].to(
                self.device
            )
        if t1 <= first:
            return max(0, f1 - frames_from), 0
        slots = torch.arange(first, t1) % self.capacity
        part = slice(first - t0, None)
        for name in ("actions", "rewards", "not_done", "obs_frame", "episode_start"):
            getattr(self, f"_{name}")[slots.to(self.device)] = chunk[name][part].to(self.device)
        first_read = np.maximum(
            chunk["obs_frame"][part].numpy() - self.frame_stack + 1,
            chunk["episode_start"][part].numpy(),
        )
        self._first_read[slots.numpy()] = first_read
        return max(0, f1 - frames_from), t1 - first

    # -- construction from a Minari dataset ------------------------------------------------------
    @classmethod
    def from_minari(
        cls,
        dataset: Any,
        frame_stack: int = FRAME_STACK,
        max_transitions: int | None = None,
        device: torch.device | str = "cpu",
    ) -> FrameReplay:
        """Read a Minari dataset's ``pixels`` frames once into memory (on ``device``).

        ``dataset`` is a ``minari.MinariDataset`` whose observations are dicts with a ``pixels``
        entry (HWC uint8), as every VORB dataset has.
        """
        total = (
            dataset.total_steps
            if max_transitions is None
            else min(dataset.total_steps, max_transitions)
        )
        space = dataset.observation_space["pixels"]
        height, width, channels = space.shape
        action_dim = int(np.prod(dataset.action_space.shape))
        # N + 1 frames per episode, allocated once.
        frame_capacity = total + dataset.total_episodes
        replay = cls(
            total, (channels, height, width), action_dim, frame_stack, device, frame_capacity
        )
        replay.extend_from_minari(dataset)
        return replay

    def extend_from_minari(self, dataset: Any) -> None:
        """Append a Minari dataset's episodes in order until the replay is full."""
        for episode in dataset.iterate_episodes():
            room = self.capacity - self.num_transitions
            if room <= 0:
                break
            steps = min(len(episode.actions), room)
            self.add_episode(
                episode.observations["pixels"][: steps + 1],
                episode.actions[:steps],
                episode.rewards[:steps],
                episode.terminations[:steps],
            )


class FrameStacker:
    """Stacks the last ``k`` frames of a running episode for acting (evaluation, online).

    Mirrors :class:`FrameReplay`: after a reset the stack is the first frame repeated.
    """

    def __init__(self, frame_stack: int = FRAME_STACK) -> None:
        self._frames: deque[np.ndarray] = deque(maxlen=frame_stack)
        self.frame_stack = frame_stack

    def reset(self, frame_hwc: np.ndarray) -> np.ndarray:
        chw = np.ascontiguousarray(frame_hwc.transpose(2, 0, 1))
        for _ in range(self.frame_stack):
            self._frames.append(chw)
        return self.stacked()

    def push(self, frame_hwc: np.ndarray) -> np.ndarray:
        self._frames.append(np.ascontiguousarray(frame_hwc.transpose(2, 0, 1)))
        return self.stacked()

    def stacked(self) -> np.ndarray:
        """uint8 (C * stack, H, W), oldest first."""
        return np.concatenate(list(self._frames), axis=0)
