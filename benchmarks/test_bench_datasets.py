"""Dataset speed and size: ``bash scripts/bench.sh -k datasets`` (not part of the tests).

Figures go to ``benchmark.extra_info`` and a one-line summary is printed for each:
- build throughput (frames/s on one core) next to the raw env's step-and-render rate measured in
  the same run (goal: >= 90% of it);
- bytes per transition on disk (goal: <= 127,008 / 6, the naive stacked obs + next_obs);
- sampling throughput of batches of 256 stacked transitions (goal: >= 20,000 transitions/s);
- the storage backends side by side (write, read into the replay, bytes), the measurement behind
  ``benchmark.datasets.build.DATA_FORMAT``.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from benchmark.data.envs import make_walker_pixels
from benchmark.data.sampler import FrameReplay
from benchmark.datasets import build as build_module
from benchmark.datasets import build_dataset
from benchmark.datasets.store import build_record

RANDOM_ID = "vorb/walker-walk/random-v0"
TRANSITIONS = 400  # one 400-step episode at the full time limit: ~5 s on a CPU core
NAIVE_BYTES = 127_008  # obs + next_obs stacks of 3 frames 84x84x3, stored per transition
results: dict[str, float] = {}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("bench-minari")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(path))
        yield path


def _raw_env_rate(steps: int) -> float:
    """Agent steps per second of the pixel env alone (step + one render), on this core."""
    env = make_walker_pixels()
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(rng.uniform(-1, 1, 6).astype(np.float32))
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def test_build_throughput_vs_raw_env(benchmark: Any, root: Path) -> None:
    # Steady state, as in a 100,000-transition build: the one-off imports (torch, above, and the
    # behaviour policies' module) are paid before timing, as the raw env's start-up is.
    importlib.import_module("benchmark.datasets.policies")  # `import` would shadow the fixture

    raw = _raw_env_rate(TRANSITIONS)
    counter = iter(range(100))

    def build() -> Any:
        target = f"vorb-bench/walker-walk/random-b{next(counter)}-v0"
        return build_dataset(
            RANDOM_ID, transitions=TRANSITIONS, workers=1, target_id=target, progress=False
        )

    dataset = benchmark.pedantic(build, rounds=1, iterations=1)
    stats = build_record(dataset)["stats"]
    rate = TRANSITIONS / benchmark.report.stats.stats.mean
    per_transition = stats["bytes_on_disk"] / stats["transitions"]
    results["build"] = rate
    benchmark.extra_info.update(
        build_frames_per_s_per_core=rate,
        raw_env_steps_per_s=raw,
        ratio=rate / raw,
        bytes_per_transition=per_transition,
        bytes_goal=NAIVE_BYTES / 6,
    )
    print(
        f"\n[datasets] build {rate:.1f} frames/s/core vs raw env {raw:.1f} steps/s: "
        f"{rate / raw:.0%} (goal >= 90%); {per_transition:,.0f} bytes/transition "
        f"(goal <= {NAIVE_BYTES / 6:,.0f}, naive {NAIVE_BYTES:,})"
    )


def _full_size_replay(dataset: Any, transitions: int = 100_000) -> FrameReplay:
    """A replay as large as a full dataset (2.1 GB of frames), tiled from a small real one.

    A 400-transition replay (8 MB) sits in the CPU cache and samples several times faster than
    a real 100,000-transition one: the size, not the content, sets the speed here.
    """
    replay = FrameReplay(transitions, (3, 84, 84), int(np.prod(dataset.action_space.shape)))
    while len(replay) < transitions:
        replay.extend_from_minari(dataset)
    return replay


def test_sampling_throughput(benchmark: Any, root: Path) -> None:
    dataset = build_dataset(
        RANDOM_ID,
        transitions=TRANSITIONS,
        workers=1,
        target_id="vorb-bench/walker-walk/random-sample-v0",
        progress=False,
    )
    replay = _full_size_replay(dataset)
    generator = torch.Generator().manual_seed(0)
    batch = benchmark(replay.sample, 256, generator)
    assert batch.obs.shape == (256, 9, 84, 84)
    assert batch.obs.untyped_storage().data_ptr() == batch.next_obs.untyped_storage().data_ptr()
    rate = 256 / benchmark.report.stats.stats.mean
    benchmark.extra_info.update(transitions_per_s=rate, goal=20_000)
    print(
        f"\n[datasets] sampling {rate:,.0f} stacked transitions/s at batch 256 from "
        f"{len(replay):,} transitions (goal >= 20,000)"
    )


@pytest.mark.parametrize("data_format", ["arrow", "parquet", "hdf5"])
def test_storage_backends(
    benchmark: Any, root: Path, data_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Write + read-into-replay speed and size per backend, on the same 200 transitions."""
    monkeypatch.setattr(build_module, "DATA_FORMAT", data_format)
    dataset = build_dataset(
        RANDOM_ID,
        transitions=200,
        workers=1,
        target_id=f"vorb-bench/walker-walk/random-{data_format}-v0",
        progress=False,
    )
    replay = benchmark.pedantic(FrameReplay.from_minari, args=(dataset,), rounds=3, iterations=1)
    read_rate = len(replay) / benchmark.report.stats.stats.mean
    per_transition = build_record(dataset)["stats"]["bytes_on_disk"] / dataset.total_steps
    benchmark.extra_info.update(
        read_transitions_per_s=read_rate, bytes_per_transition=per_transition
    )
    print(
        f"\n[datasets] {data_format}: read into replay {read_rate:,.0f} transitions/s, "
        f"{per_transition:,.0f} bytes/transition"
    )
