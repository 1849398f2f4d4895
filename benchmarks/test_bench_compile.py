"""``torch.compile(fullgraph=True)`` of the pixel update against eager, on this CPU.

Run: ``bash scripts/bench.sh -k compile``. SAC-CURL and CQL-CURL at their defaults (batch 128,
9x84x84 stacks, hidden 1024), one torch thread, eager and compiled agents built from the same
seed and updated on the same batch; rounds alternate update shapes (actor every 2nd), the
compile happens in the warm-up rounds. Compare the two rows' means (same run): the CPU default
(``compile=False``) is whichever is faster here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

from benchmark.data.sampler import TransitionBatch
from benchmark.harness import registry
from benchmark.harness.training import seed_everything

BATCH, OBS_SHAPE, ACTION_DIM = 128, (9, 84, 84), 6
ROUNDS, WARMUP = 6, 4  # warm-up: both compiled shapes (critic only; with the actor), twice
MEANS: dict[tuple[str, bool], float] = {}


@pytest.fixture(scope="module")
def batch() -> TransitionBatch:
    generator = torch.Generator().manual_seed(0)

    def frames() -> torch.Tensor:
        return torch.randint(0, 256, (BATCH, *OBS_SHAPE), dtype=torch.uint8, generator=generator)

    return TransitionBatch(
        obs=frames(),
        action=torch.rand((BATCH, ACTION_DIM), generator=generator) * 2 - 1,
        reward=torch.rand((BATCH, 1), generator=generator),
        next_obs=frames(),
        not_done=torch.ones((BATCH, 1)),
    )


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("name", ["sac-curl-offline", "cql-curl"])
def test_bench_compile(benchmark: Any, batch: TransitionBatch, name: str, compiled: bool) -> None:
    torch.set_num_threads(1)
    seed_everything(0)
    spec = registry.get(name)
    config = dataclasses.replace(spec.default_config(), batch_size=BATCH, compile=compiled)
    agent = spec.agent_class()(config, OBS_SHAPE, ACTION_DIM, "cpu")
    benchmark.pedantic(agent.update, args=(batch,), rounds=ROUNDS, warmup_rounds=WARMUP)
    MEANS[name, compiled] = benchmark.report.stats.stats.mean
    benchmark.extra_info["updates_per_s"] = 1.0 / MEANS[name, compiled]
    benchmark.extra_info["cpu"] = torch.backends.cpu.get_cpu_capability()
