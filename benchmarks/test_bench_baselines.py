"""Updates per second of every baseline at batch 128 on 9x84x84 stacks, next to a
straightforward CURL-reference-style SAC-CURL update measured in the same run.

Run: ``bash scripts/bench.sh -k baselines``. The headline is the ratio of the fused SAC-CURL
update's rate to the reference-style one's, printed at the end (same machine, same run).
Rounds are even so that SAC-CURL's every-2nd-step actor update is fairly represented.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any

import pytest
import torch

from benchmark.data.sampler import TransitionBatch
from benchmark.harness import registry
from benchmark.harness.training import seed_everything
from benchmarks.curl_reference import ReferenceSACCURL

BATCH, OBS_SHAPE, ACTION_DIM = 128, (9, 84, 84), 6
ROUNDS, WARMUP = 6, 2
MEANS: dict[str, float] = {}
# One registration per agent class: sac-curl-online trains the same agent as sac-curl-offline.
NAMES = ["sac-curl-offline", "cql-curl", "bc-pixels", "drqbc"]


@pytest.fixture(scope="module")
def batch() -> TransitionBatch:
    generator = torch.Generator().manual_seed(0)
    return TransitionBatch(
        obs=torch.randint(0, 256, (BATCH, *OBS_SHAPE), dtype=torch.uint8, generator=generator),
        action=torch.rand((BATCH, ACTION_DIM), generator=generator) * 2 - 1,
        reward=torch.rand((BATCH, 1), generator=generator),
        next_obs=torch.randint(0, 256, (BATCH, *OBS_SHAPE), dtype=torch.uint8, generator=generator),
        not_done=torch.ones((BATCH, 1)),
    )


def run(benchmark: Any, key: str, update: Any, batch: TransitionBatch) -> None:
    benchmark.extra_info["batch_size"] = BATCH
    benchmark.pedantic(update, args=(batch,), rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    MEANS[key] = benchmark.report.stats.stats.mean
    benchmark.extra_info["updates_per_s"] = 1.0 / MEANS[key]


def test_bench_reference_sac_curl(benchmark: Any, batch: TransitionBatch) -> None:
    seed_everything(0)
    agent = ReferenceSACCURL(registry.get("sac-curl-offline").default_config(), OBS_SHAPE, 6)
    run(benchmark, "reference", agent.update, batch)


@pytest.mark.parametrize("name", NAMES)
def test_bench_baseline(benchmark: Any, batch: TransitionBatch, name: str) -> None:
    seed_everything(0)
    spec = registry.get(name)
    config = dataclasses.replace(spec.default_config(), batch_size=BATCH)
    agent = spec.agent_class()(config, OBS_SHAPE, ACTION_DIM, torch.device("cpu"))
    run(benchmark, name, agent.update, batch)


def test_bench_paired_ratio(
    benchmark: Any, batch: TransitionBatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The headline: reference-style and fused SAC-CURL updates *alternated* (a round is one of
    each), so that load from other processes on a shared machine hits both alike; the ratio of
    their median times, then every figure of this run."""
    seed_everything(0)
    config = registry.get("sac-curl-offline").default_config()
    reference = ReferenceSACCURL(config, OBS_SHAPE, ACTION_DIM)
    fused = registry.get("sac-curl-offline").agent_class()(
        config, OBS_SHAPE, ACTION_DIM, torch.device("cpu")
    )
    times: dict[str, list[float]] = {"reference": [], "fused": []}
    cpu_times: dict[str, list[float]] = {"reference": [], "fused": []}

    def pair() -> None:
        for key, agent in (("reference", reference), ("fused", fused)):
            start, cpu_start = time.perf_counter(), time.process_time()
            agent.update(batch)
            times[key].append(time.perf_counter() - start)
            cpu_times[key].append(time.process_time() - cpu_start)

    benchmark.pedantic(pair, rounds=2 * ROUNDS, warmup_rounds=WARMUP, iterations=1)
    median = {key: statistics.median(values[WARMUP:]) for key, values in times.items()}
    cpu = {key: statistics.median(values[WARMUP:]) for key, values in cpu_times.items()}
    ratio = median["reference"] / median["fused"]
    benchmark.extra_info |= {"paired_ratio": ratio, "paired_median_s": median, "cpu_s": cpu}
    with capsys.disabled():
        print(f"\nupdates/s at batch {BATCH}, {torch.get_num_threads()} threads:")
        for key, mean in MEANS.items():
            print(f"  {key:18s} {1 / mean:6.2f} /s  ({mean:.3f} s per update, mean)")
        for key, value in median.items():
            print(f"  paired {key:11s} {1 / value:6.2f} /s  ({value:.3f} s per update, median)")
        print(f"  headline: fused SAC-CURL update = {ratio:.2f}x the reference-style rate")
        cpu_ratio = cpu["reference"] / cpu["fused"]
        print(f"  (process CPU time per update: {cpu}; ratio {cpu_ratio:.2f}x)")
