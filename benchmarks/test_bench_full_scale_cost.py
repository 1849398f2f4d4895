"""What full scale costs on this CPU: every pixel baseline's update at its published batch size
(the ``pixels-cpu`` and ``full`` profiles' batch), and one rendered evaluation step, in fp32 on
one torch thread; then CPU-hours for 10k, 100k and 1M updates under the full protocol.

Run: ``bash scripts/bench.sh -k full_scale_cost``. The table printed at the end (and each case's
``extra_info``) gives, per baseline: seconds per update (median), the ratio to pixel BC's update
measured in the same run, and CPU-hours = updates x s/update + evaluations x 10 episodes x 500
rendered agent steps x s/step (evaluation every 5,000 updates, as the ``full`` profile; 4 at
10k, the ``pixels-cpu`` profile's 2,500 interval). Online SAC-CURL also renders one training
step per update (its environment steps), counted as an evaluation step. Medians are robust to
other processes' load; run it on an idle machine for absolute figures.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from benchmark.data.envs import ENV_ID  # importing the package registers the ids
from benchmark.data.sampler import TransitionBatch
from benchmark.harness import registry
from benchmark.harness.training import seed_everything

OBS_SHAPE, ACTION_DIM = (9, 84, 84), 6
ROUNDS, WARMUP = 6, 2
STEPS = 40  # rendered agent steps timed
NAMES = ["bc-pixels", "drqbc", "sac-curl-offline", "cql-curl", "sac-curl-online"]
EVAL_STEPS_PER_EVALUATION = 10 * 500  # 10 episodes of 500 agent steps
SCALES = {10_000: 2_500, 100_000: 5_000, 1_000_000: 5_000}  # updates: evaluation interval
MEDIANS: dict[str, float] = {}


def batch_of(size: int) -> TransitionBatch:
    generator = torch.Generator().manual_seed(0)
    frames = (size, *OBS_SHAPE)
    return TransitionBatch(
        obs=torch.randint(0, 256, frames, dtype=torch.uint8, generator=generator),
        action=torch.rand((size, ACTION_DIM), generator=generator) * 2 - 1,
        reward=torch.rand((size, 1), generator=generator),
        next_obs=torch.randint(0, 256, frames, dtype=torch.uint8, generator=generator),
        not_done=torch.ones((size, 1)),
    )


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def median_of(benchmark: Any, key: str, work: Any) -> None:
    times: list[float] = []

    def timed() -> None:
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)

    benchmark.pedantic(timed, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    MEDIANS[key] = statistics.median(times[WARMUP:] if len(times) > WARMUP else times)
    benchmark.extra_info["median_s"] = MEDIANS[key]


@pytest.mark.parametrize("name", [n for n in NAMES if n != "sac-curl-online"])
def test_bench_update_at_published_batch(benchmark: Any, name: str) -> None:
    seed_everything(0)
    spec = registry.get(name)
    config = spec.default_config()
    assert not getattr(config, "amp", False), "fp32: the reference grids' precision"
    agent = spec.agent_class()(config, OBS_SHAPE, ACTION_DIM, torch.device("cpu"))
    batch = batch_of(config.batch_size)
    benchmark.extra_info["batch_size"] = config.batch_size
    median_of(benchmark, name, lambda: agent.update(batch))


def test_bench_rendered_evaluation_step(benchmark: Any) -> None:
    """One agent step of a pixel evaluation: the CQL-CURL actor on a frame stack, then a
    rendered environment step (action repeat 2, one 84x84 render)."""
    spec = registry.get("cql-curl")
    agent = spec.agent_class()(spec.default_config(), OBS_SHAPE, ACTION_DIM, torch.device("cpu"))
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    stack = np.zeros(OBS_SHAPE, dtype=np.uint8)

    def steps() -> None:
        for _ in range(STEPS):
            _, _, terminated, truncated, _ = env.step(agent.act(stack, deterministic=True))
            if terminated or truncated:
                env.reset()

    try:
        median_of(benchmark, "step", steps)
    finally:
        env.close()
    MEDIANS["step"] /= STEPS


def cpu_hours(name: str, updates: int, interval: int) -> float:
    step = MEDIANS["step"]
    update = MEDIANS["sac-curl-offline" if name == "sac-curl-online" else name]
    evaluations = updates // interval
    seconds = updates * update + evaluations * EVAL_STEPS_PER_EVALUATION * step
    if name == "sac-curl-online":
        seconds += updates * step  # one rendered environment step per update
    return seconds / 3600


def test_bench_full_scale_table(benchmark: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The table: printed once every case above has run (skipped when run alone)."""
    missing = [n for n in [*NAMES[:-1], "step"] if n not in MEDIANS]
    if missing:
        pytest.skip(f"run the whole file: {missing} not measured")
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    rows = {n: {str(u): cpu_hours(n, u, i) for u, i in SCALES.items()} for n in NAMES}
    benchmark.extra_info |= {"cpu_hours": rows, "medians_s": dict(MEDIANS)}
    with capsys.disabled():
        print(f"\nfp32, 1 thread; s per rendered evaluation step: {MEDIANS['step']:.4f}")
        print("| baseline | batch | s/update | x pixel BC | CPU-h 10k | CPU-h 100k | CPU-h 1M |")
        print("|---|---|---|---|---|---|---|")
        for name in NAMES:
            key = "sac-curl-offline" if name == "sac-curl-online" else name
            batch = registry.get(name).default_config().batch_size
            ratio = MEDIANS[key] / MEDIANS["bc-pixels"]
            hours = " | ".join(f"{rows[name][str(u)]:,.1f}" for u in SCALES)
            print(f"| {name} | {batch} | {MEDIANS[key]:.3f} | {ratio:.2f} | {hours} |")
