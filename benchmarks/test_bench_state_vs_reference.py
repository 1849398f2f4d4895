"""The state baselines' updates against plain per-seed reference-style updates, same run.

Run: ``bash scripts/bench.sh -k state_vs_reference``. For each offline state baseline (walker
sizes: state 24, action 6, the registered config's batch and networks), two cases measured
as separate pytest-benchmark runs: the reference-style update of ``benchmarks/corl_reference.py``
(one seed) and VORB's update of one seed (vectorised seeds were removed: README). Reported, in
each case's ``extra_info`` and in the table printed at the end:

- per-seed ratio = reference time / VORB's one-seed time;
- the arithmetic floor: each case's FLOPs per update (``torch.utils.flop_counter``) over the
  fp32 matrix-product rate measured first in the same run (``test_bench_sgemm``: a 256 x 256
  by 256 x 256 product, the updates' dominant shape); ``of_limit`` = floor / median time. An
  fp32 update cannot beat its floor, so a per-seed ratio above reference time / reference
  floor is out of reach in fp32 whatever the code does;
- ``seed-bf16`` (baselines with an ``amp`` switch): VORB's one-seed update under bf16
  autocast, against the fp32 reference: what the bf16 kernels of this CPU add (a change of
  precision, reported beside the fp32 ratios, not instead of them).

Times are medians (robust to other processes' load); one torch thread. Rounds are even so that
TD3+BC's every-2nd actor step is fairly represented. A pixel case (SAC-CURL at its own batch) sets
CURL's update written plainly (``curl_reference.py``) against one seed.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark.data.sampler import TransitionBatch
from benchmark.harness import registry
from benchmark.harness.precision import BF16, supports_autocast, with_precision
from benchmark.harness.training import seed_everything
from benchmarks.corl_reference import ReferenceBC, ReferenceCQL, ReferenceSAC, ReferenceTD3BC
from benchmarks.curl_reference import ReferenceSACCURL

STATE_DIM, ACTION_DIM, PIXELS = 24, 6, (9, 84, 84)
REFERENCES: dict[str, Callable[..., Any]] = {
    "bc-state": ReferenceBC,
    "td3bc-state": ReferenceTD3BC,
    "sac-state-offline": ReferenceSAC,
    "cql-state": ReferenceCQL,
}
SLOW = {"cql-state"}  # ~0.3 s an update, ~13 GFLOP: few rounds, and S=3 only
ROUNDS, SLOW_ROUNDS, WARMUP = 20, 4, 2
MEDIANS: dict[tuple[str, str], float] = {}
FLOPS: dict[tuple[str, str], float] = {}  # per update, mean over FLOP_UPDATES updates
FLOP_UPDATES = 2  # TD3+BC steps its actor every 2nd update
SGEMM = "sgemm"  # MEDIANS key of the fp32 matrix-product rate, in FLOP/s


def cases() -> list[tuple[str, str]]:
    """(baseline, case) in measuring order: the reference first, so ratios can be computed."""
    out = []
    for name in REFERENCES:
        bf16 = ("seed-bf16",) if supports_autocast(registry.get(name).config_class()) else ()
        out += [(name, "reference"), (name, "seed"), *((name, s) for s in bf16)]
    return out


def count_flops(update: Callable[[TransitionBatch], Any], batch: TransitionBatch) -> float:
    """FLOPs of one update (matrix products and convolutions), the mean of a few updates."""
    with FlopCounterMode(display=False) as counter:
        for _ in range(FLOP_UPDATES):
            update(batch)
    return counter.get_total_flops() / FLOP_UPDATES


def floor_ratios(name: str, case: str) -> dict[str, float]:
    """The arithmetic floor of a case and the fraction of it its median reaches."""
    rate, flops = MEDIANS.get((SGEMM, SGEMM)), FLOPS.get((name, case))
    median = MEDIANS.get((name, case))
    if rate is None or flops is None or median is None:
        return {}
    floor = flops / rate
    return {"gflop": flops / 1e9, "floor_ms": 1e3 * floor, "of_limit": floor / median}


def members_of(case: str) -> int | None:
    return int(case.removeprefix("members")) if case.startswith("members") else None


def test_bench_sgemm(benchmark: Any) -> None:
    """The fp32 matrix-product rate of this core at the updates' dominant shape (FLOP/s)."""
    torch.manual_seed(0)
    left, right = torch.randn(256, 256), torch.randn(256, 256)

    def products() -> None:
        for _ in range(20):
            torch.mm(left, right)

    benchmark.pedantic(products, rounds=50, warmup_rounds=5)
    MEDIANS[SGEMM, SGEMM] = 20 * 2 * 256**3 / benchmark.report.stats.stats.median
    benchmark.extra_info["gflops"] = MEDIANS[SGEMM, SGEMM] / 1e9


def state_batch(batch_size: int, members: int | None) -> TransitionBatch:
    """Random normalised-looking states; (M, B, ...) with members (MemberReplay's layout)."""
    generator = torch.Generator().manual_seed(0)
    lead = () if members is None else (members,)

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*lead, batch_size, *shape, generator=generator)

    return TransitionBatch(
        obs=draw(STATE_DIM),
        action=torch.tanh(draw(ACTION_DIM)),
        reward=draw(1).abs(),
        next_obs=draw(STATE_DIM),
        not_done=torch.ones(*lead, batch_size, 1),
    )


def ratios(name: str, case: str) -> dict[str, float]:
    """The ratios of one measured case against the reference of the same run."""
    reference, ours = MEDIANS.get((name, "reference")), MEDIANS.get((name, case))
    if reference is None or ours is None or case == "reference":
        return {}
    members = members_of(case)
    if case == "seed-bf16":
        return {"per_seed_ratio_bf16": reference / ours}
    if members is None:
        return {"per_seed_ratio": reference / ours}
    return {"aggregate_ratio": members * reference / ours, "per_member_ms": 1e3 * ours / members}


def cpu_model() -> str:
    """The CPU's model name and whether it has AVX512-BF16 (from /proc/cpuinfo)."""
    info = Path("/proc/cpuinfo")
    text = info.read_text() if info.exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in text.splitlines() if "model name" in line),
        platform.processor() or "unknown",
    )
    return f"{model}, avx512_bf16 {'yes' if 'avx512_bf16' in text else 'no'}"


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.parametrize(("name", "case"), cases(), ids=[f"{n}-{c}" for n, c in cases()])
def test_bench_state_update(benchmark: Any, name: str, case: str) -> None:
    seed_everything(0)
    spec = registry.get(name)
    config = spec.default_config()
    members = members_of(case)
    if case == "reference":
        agent = REFERENCES[name](config, STATE_DIM, ACTION_DIM)
    else:
        if case == "seed-bf16":
            config = with_precision(config, BF16)
        agent = spec.agent_class()(config, (STATE_DIM,), ACTION_DIM, "cpu")
    batch = state_batch(config.batch_size, members)
    rounds = SLOW_ROUNDS if name in SLOW else ROUNDS
    benchmark.pedantic(agent.update, args=(batch,), rounds=rounds, warmup_rounds=WARMUP)
    MEDIANS[name, case] = benchmark.report.stats.stats.median
    FLOPS[name, case] = count_flops(agent.update, batch)
    benchmark.extra_info |= {"batch_size": config.batch_size, "members": members}
    benchmark.extra_info |= ratios(name, case) | floor_ratios(name, case)


@pytest.mark.parametrize("case", ["reference", "seed"])
def test_bench_pixel_update(benchmark: Any, case: str) -> None:
    """SAC-CURL on 9x84x84 stacks at its batch: CURL's own update written plainly
    (``benchmarks/curl_reference.py``) and one seed."""
    seed_everything(0)
    spec, members = registry.get("sac-curl-offline"), members_of(case)
    config = spec.default_config()
    if case == "reference":
        agent: Any = ReferenceSACCURL(config, PIXELS, ACTION_DIM)
    else:
        agent = spec.agent_class()(config, PIXELS, ACTION_DIM, "cpu")
    generator = torch.Generator().manual_seed(0)
    lead = () if members is None else (members,)
    size = (*lead, config.batch_size)
    batch = TransitionBatch(
        obs=torch.randint(0, 256, (*size, *PIXELS), dtype=torch.uint8, generator=generator),
        action=torch.rand((*size, ACTION_DIM), generator=generator) * 2 - 1,
        reward=torch.rand((*size, 1), generator=generator),
        next_obs=torch.randint(0, 256, (*size, *PIXELS), dtype=torch.uint8, generator=generator),
        not_done=torch.ones((*size, 1)),
    )
    benchmark.pedantic(agent.update, args=(batch,), rounds=2, warmup_rounds=1)
    MEDIANS["sac-curl-pixels", case] = benchmark.report.stats.stats.median
    benchmark.extra_info |= ratios("sac-curl-pixels", case)


def test_bench_state_summary(benchmark: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """The table of this run: medians and ratios (no timing of its own)."""
    benchmark.pedantic(lambda: None, rounds=1)
    rows = []
    pixel_cases = [("sac-curl-pixels", case) for case in ("reference", "seed")]
    for name, case in [*cases(), *pixel_cases]:
        if (name, case) in MEDIANS:
            extra = ratios(name, case) | floor_ratios(name, case)
            rows.append((name, case, 1e3 * MEDIANS[name, case], extra))
    benchmark.extra_info |= {"cpu": cpu_model(), "rows": [[*row[:3], row[3]] for row in rows]}
    with capsys.disabled():
        rate = MEDIANS.get((SGEMM, SGEMM), float("nan")) / 1e9
        print(f"\nstate updates against the reference style, {cpu_model()}, 1 thread (medians);")
        print(f"  fp32 256x256x256 product: {rate:.1f} GFLOP/s (the floors' rate)")
        for name, case, ms, extra in rows:
            shown = "  ".join(f"{key} {value:.2f}" for key, value in extra.items())
            print(f"  {name:18s} {case:10s} {ms:9.2f} ms  {shown}")
        for name in REFERENCES:
            reference, floor = MEDIANS.get((name, "reference")), floor_ratios(name, "seed")
            if reference and floor:
                print(
                    f"  {name}: fp32 per-seed ratio at most {1e3 * reference / floor['floor_ms']:.2f}x"
                    " (reference time / VORB's one-seed floor)"
                )
