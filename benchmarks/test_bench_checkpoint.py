"""Bytes and time of an online checkpoint's replay: ``bash scripts/bench.sh -k checkpoint``.

A full CURL replay (100,000 transitions of 84x84x3 frames, 500-step episodes; synthetic frames:
the bytes do not depend on the pixels) is checkpointed two ways:
- before: the whole replay in the state (``state_dict()`` without a store, ``torch.save``d);
- after: incremental, the store attached: the chunk of the frames and transitions added since
  the previous checkpoint, at the ``full`` profile's evaluation spacing (5,000 updates = 5,000
  agent steps), plus the small checkpoint file listing the chunks.
Goal: the replay's share of a checkpoint about 0.1 GB instead of 2.1 GB. The ratio is printed and
recorded in ``benchmark.extra_info``. Peak memory: about two replays (4.5 GB), during "before".
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from benchmark.atomic import atomic_write
from benchmark.data.replay_store import CHUNK_GLOB
from benchmark.data.sampler import FrameReplay

CAPACITY = 100_000  # CURL, Table 3
SPACING = 5_000  # agent steps between two checkpoints of the full profile
EPISODE = 500  # walker: 1,000 simulator steps at action repeat 2
ACTION_DIM = 6
GOAL_BYTES = 0.1e9
results: dict[str, float] = {}


class SyntheticWalker:
    """Appends 84x84x3 frames (a pool of random ones, cycled) as an online agent would."""

    def __init__(self, replay: FrameReplay) -> None:
        rng = np.random.default_rng(0)
        self.pool = rng.integers(0, 256, (97, 84, 84, 3), dtype=np.uint8)
        self.action = np.zeros(ACTION_DIM, np.float32)
        self.replay, self.steps = replay, 0

    def run(self, agent_steps: int) -> None:
        for _ in range(agent_steps):
            if self.steps % EPISODE == 0:
                self.replay.start_episode(self.pool[self.steps % len(self.pool)])
            self.steps += 1
            self.replay.add(self.action, 0.0, False, self.pool[self.steps % len(self.pool)])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("bench-checkpoint")
    yield path
    shutil.rmtree(path)  # gigabytes: not left for pytest's keep-the-last-three


@pytest.fixture(scope="module")
def walker() -> SyntheticWalker:
    replay = FrameReplay(CAPACITY, (3, 84, 84), ACTION_DIM)
    walker = SyntheticWalker(replay)
    walker.run(CAPACITY)
    assert len(replay) == CAPACITY
    return walker


def _save(state: dict[str, Any], path: Path) -> int:
    atomic_write(path, lambda file: torch.save(state, file))
    return path.stat().st_size


def test_whole_replay_checkpoint(benchmark: Any, walker: SyntheticWalker, folder: Path) -> None:
    path = folder / "whole.pt"
    written = benchmark.pedantic(
        lambda: _save(walker.replay.state_dict(), path), rounds=1, iterations=1
    )
    path.unlink()
    results["before"] = written
    benchmark.extra_info.update(bytes_written=written, transitions=CAPACITY)
    print(f"\n[checkpoint] whole replay: {written / 1e9:.3f} GB per checkpoint")


def test_incremental_checkpoint(benchmark: Any, walker: SyntheticWalker, folder: Path) -> None:
    replay, store = walker.replay, folder / "replay"
    replay.attach_store(store)
    checkpoint = folder / "checkpoint.pt"
    _save(replay.state_dict(), checkpoint)  # the first one holds everything live
    replay.checkpoint_saved()

    def checkpoint_once() -> int:
        before = {p.name for p in store.glob(CHUNK_GLOB)}
        state_bytes = _save(replay.state_dict(), checkpoint)
        new = [p for p in store.glob(CHUNK_GLOB) if p.name not in before]
        replay.checkpoint_saved()
        return state_bytes + sum(p.stat().st_size for p in new)

    setup = lambda: walker.run(SPACING)  # noqa: E731  (untimed: the steps between checkpoints)
    written = benchmark.pedantic(checkpoint_once, setup=setup, rounds=3, iterations=1)
    results["after"] = written
    disk = sum(p.stat().st_size for p in store.glob(CHUNK_GLOB))
    benchmark.extra_info.update(
        bytes_written=written, new_agent_steps=SPACING, goal=GOAL_BYTES, store_bytes=disk
    )
    ratio = f", {results['before'] / written:.0f}x less" if "before" in results else ""
    print(
        f"\n[checkpoint] incremental: {written / 1e9:.3f} GB per checkpoint after {SPACING:,} "
        f"agent steps (goal about {GOAL_BYTES / 1e9:.1f} GB){ratio}; chunks on disk "
        f"{disk / 1e9:.2f} GB"
    )
