"""The GPU fast path's candidates, each against eager fp32 in the same run (CUDA only).

For every baseline at batch 128 on 9x84x84 stacks: the update as eager fp32, under
``torch.compile``, with TF32 matmuls and convolutions and under bf16 autocast; then a learning
check of each variant against eager fp32 lives in ``tests/test_gpu_paths.py`` (a test, not a
timing). A variant becomes a default only if it is faster *and* passes that check.

Run on a machine with CUDA: ``bash scripts/bench.sh -k gpu``. Skipped without CUDA. Never run
by the session that wrote it (no GPU was lent to it): the figures are for the first GPU session
to take. CUDA graphs (capturable Adam, static buffers) need an update without Python branching
(the every-second actor step) and are not here yet.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from benchmark.data.sampler import TransitionBatch
from benchmark.harness import registry
from benchmark.harness.training import seed_everything
from benchmark.lease.speed import GPU_BENCH_NAMES as NAMES

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

BATCH, OBS_SHAPE, ACTION_DIM = 128, (9, 84, 84), 6
ROUNDS, WARMUP = 50, 10
VARIANTS = ["eager", "compile", "tf32", "bf16"]
RATES: dict[tuple[str, str], float] = {}


def batches(count: int, seed: int = 0) -> list[TransitionBatch]:
    generator = torch.Generator(device="cuda").manual_seed(seed)
    size = (BATCH,)

    def one() -> TransitionBatch:
        pixels = lambda: torch.randint(  # noqa: E731
            0, 256, (*size, *OBS_SHAPE), dtype=torch.uint8, device="cuda", generator=generator
        )
        return TransitionBatch(
            obs=pixels(),
            action=torch.rand((*size, ACTION_DIM), device="cuda", generator=generator) * 2 - 1,
            reward=torch.rand((*size, 1), device="cuda", generator=generator),
            next_obs=pixels(),
            not_done=torch.ones((*size, 1), device="cuda"),
        )

    return [one() for _ in range(count)]


@contextlib.contextmanager
def variant_context(variant: str) -> Iterator[None]:
    """TF32 on for ``tf32`` (off otherwise: eager fp32 means fp32), bf16 autocast for ``bf16``."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = variant == "tf32"
    torch.backends.cudnn.benchmark = True  # fixed shapes
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if variant == "bf16"
        else contextlib.nullcontext()
    )
    try:
        with autocast:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def make_update(name: str, variant: str) -> Callable[[TransitionBatch], dict[str, Any]]:
    seed_everything(0)
    spec = registry.get(name)
    config = dataclasses.replace(spec.default_config(), batch_size=BATCH)
    agent = spec.agent_class()(config, OBS_SHAPE, ACTION_DIM, torch.device("cuda"))
    return torch.compile(agent.update) if variant == "compile" else agent.update


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", NAMES)
def test_bench_gpu_update(benchmark: Any, name: str, variant: str) -> None:
    update, data = make_update(name, variant), batches(8)
    step = iter(range(10**9))

    def one_update() -> None:
        update(data[next(step) % len(data)])
        torch.cuda.synchronize()

    with variant_context(variant):
        benchmark.pedantic(one_update, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    RATES[name, variant] = 1 / benchmark.report.stats.stats.mean
    benchmark.extra_info |= {
        "updates_per_s": RATES[name, variant],
        "vs_eager": RATES[name, variant] / RATES.get((name, "eager"), float("nan")),
    }
