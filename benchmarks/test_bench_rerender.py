"""Re-render speed: ``bash scripts/bench.sh -k rerender`` (not part of the tests).

Re-rendering sets a stored physics state and renders it; a build steps the physics (action
repeat 2) and renders. Both are measured on one core in the same run (goal: re-render >= 1.0x the
raw env's step-and-render rate):
- the inner loop alone (set state + render vs step + render), per variant;
- the whole command (read the source, render in one worker, write, digest-check), per variant.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from test_bench_datasets import RANDOM_ID, TRANSITIONS, _raw_env_rate

from benchmark.datasets import build_dataset
from benchmark.datasets.rerender import render_states, rerender_dataset, variant_env

SOURCE_ID = "vorb-bench/walker-walk/random-rerender-v0"
VARIANT_NAMES = ("default", "64px", "camera1", "distracting")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    path = tmp_path_factory.mktemp("bench-rerender")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(path))
        yield build_dataset(
            RANDOM_ID, transitions=TRANSITIONS, workers=1, target_id=SOURCE_ID, progress=False
        )


@pytest.fixture(scope="module")
def raw_rate() -> float:
    return _raw_env_rate(TRANSITIONS)


def _physics(source: Any) -> np.ndarray:
    return np.concatenate([e.observations["physics"] for e in source.iterate_episodes()])


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_inner_loop_vs_raw_env(benchmark: Any, source: Any, raw_rate: float, name: str) -> None:
    states = _physics(source)
    env = variant_env(name, 0)  # made (and its appearance drawn) before timing
    frames = benchmark.pedantic(render_states, args=(env, states), rounds=3, iterations=1)
    assert len(frames) == len(states)
    rate = len(states) / benchmark.report.stats.stats.mean
    benchmark.extra_info.update(frames_per_s=rate, raw_env_steps_per_s=raw_rate)
    print(
        f"\n[rerender] {name}: set state + render {rate:.1f} frames/s/core vs step + render "
        f"{raw_rate:.1f} steps/s: {rate / raw_rate:.2f}x (goal >= 1.0x)"
    )


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_rerender_command_vs_raw_env(
    benchmark: Any, source: Any, raw_rate: float, name: str
) -> None:
    counter = iter(range(100))

    def rerender() -> Any:
        target = f"vorb-bench/walker-walk/random-{name}-r{next(counter)}-v0"
        return rerender_dataset(SOURCE_ID, name, workers=1, target_id=target, progress=False)

    dataset = benchmark.pedantic(rerender, rounds=1, iterations=1)
    frames = dataset.total_steps + dataset.total_episodes
    rate = frames / benchmark.report.stats.stats.mean
    benchmark.extra_info.update(frames_per_s=rate, raw_env_steps_per_s=raw_rate)
    print(
        f"\n[rerender] {name}: whole command {rate:.1f} frames/s/core (read, render, write, "
        f"digest check) vs step + render {raw_rate:.1f} steps/s: {rate / raw_rate:.2f}x"
    )
