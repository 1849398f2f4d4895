"""Which precision a run trains in: fp32, or bf16 autocast where it is faster on this machine.

A profile asks for ``fp32``, ``bf16`` or ``auto`` (``--set precision=...``); ``auto`` is decided
once per run, before any cell starts (:func:`resolve`), by measurement rather than assumption:

1. on a CPU, the instruction set: bf16 autocast is only fast with native bf16 kernels, which need
   ``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo`` and no ``ONEDNN_MAX_CPU_ISA`` cap below
   oneDNN's ``AVX512_CORE_BF16``. Without them oneDNN emulates bf16 and an update is about twice
   as slow as fp32 (measured: BC at batch 256, 3.16 s against 1.40 s). torch's own answers cannot
   decide: ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` is True on such a CPU too, and
   ``get_cpu_capability()`` reads ``AVX512`` on both kinds;
2. where native kernels exist (and on CUDA devices with bf16), a short probe: two timed updates
   of a selected baseline each way at a small batch; bf16 only when it is at least
   :data:`SPEEDUP_NEEDED` times faster, so that noise does not flip the choice between runs.

The choice is recorded: each cell's ``meta.json`` holds the precision it trained in under
``setup`` (so a cell never resumes in the other one) and how it was chosen (``precision``), and
the leaderboard names it. ``auto`` decides on the launching machine: on a cluster of mixed
machines, ask for ``fp32`` or ``bf16`` explicitly.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from baselines.contract import Choice, TransitionBatch

FP32, BF16, AUTO = "fp32", "bf16", "auto"
PRECISIONS = (FP32, BF16, AUTO)
Precision = Annotated[str, Choice(PRECISIONS)]  # the profile's field
SPEEDUP_NEEDED = 1.25  # BC at the probe batch: 1.9x with native bf16, 0.43x under the ISA cap
PROBE_BATCH = 64
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# oneDNN's ISA names, lowest first (oneDNN docs, "CPU Dispatcher Control"); native bf16 from
# AVX512_CORE_BF16 on. DNNL_MAX_CPU_ISA is the older name of the same variable.
ONEDNN_ISAS = (
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX10_1_512",
    "AVX512_CORE_FP16",
    "AVX10_1_512_AMX",
    "AVX512_CORE_AMX",
    "AVX10_1_512_AMX_FP16",
    "AVX512_CORE_AMX_FP16",
    "DEFAULT",
    "ALL",
)
ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


@dataclass(frozen=True)
class PrecisionChoice:
    """The run's precision and why: ``resolved`` is ``fp32`` or ``bf16``."""

    requested: str
    resolved: str
    reason: str
    seconds_per_update: dict[str, float] = field(default_factory=dict)  # the probe's, if any

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_precision(value: str) -> str:
    if value not in PRECISIONS:
        raise ValueError(f"precision {value!r} is not one of {', '.join(PRECISIONS)}")
    return value


# -- what the machine offers -------------------------------------------------------------------
def cpu_flags(cpuinfo: str | None = None) -> frozenset[str] | None:
    """The CPU's feature flags (``flags``/``Features`` lines of ``/proc/cpuinfo``); None where
    the file does not exist (not Linux)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        if not path.is_file():
            return None
        cpuinfo = path.read_text()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return frozenset(flags)


def isa_cap(environ: Mapping[str, str] | None = None) -> str | None:
    """oneDNN's instruction-set cap from the environment, upper-cased; None when unset."""
    environ = os.environ if environ is None else environ
    for name in ISA_CAP_VARIABLES:
        if environ.get(name):
            return environ[name].strip().upper()
    return None


def cpu_bf16_blocker(flags: frozenset[str] | None, cap: str | None) -> str | None:
    """Why bf16 cannot be native on this CPU, or None when it may be (then a probe decides).

    Unknown flags (no ``/proc/cpuinfo``) or an unknown cap name block nothing: the probe decides.
    """
    if flags is not None and not flags & set(NATIVE_BF16_FLAGS):
        return f"the CPU has neither {' nor '.join(NATIVE_BF16_FLAGS)} (/proc/cpuinfo)"
    if cap in ONEDNN_ISAS and ONEDNN_ISAS.index(cap) < ONEDNN_ISAS.index("AVX512_CORE_BF16"):
        return f"ONEDNN_MAX_CPU_ISA={cap} caps oneDNN below AVX512_CORE_BF16"
    return None


# -- the decision ------------------------------------------------------------------------------
def resolve(requested: str, device: str, specs: Sequence[Any], threads: int) -> PrecisionChoice:
    """The run's precision; ``auto`` is measured here (once per run, before any cell)."""
    check_precision(requested)
    if requested != AUTO:
        return PrecisionChoice(requested, requested, "asked for")
    probed = [spec for spec in specs if takes_part(spec)]
    if not probed:
        return PrecisionChoice(AUTO, FP32, "no selected pixel baseline has a bf16 autocast path")
    blocker = _device_blocker(device)
    if blocker is not None:
        return PrecisionChoice(AUTO, FP32, blocker)
    seconds = probe(probed[0], device, threads)
    speedup = seconds[FP32] / seconds[BF16]
    resolved = BF16 if speedup >= SPEEDUP_NEEDED else FP32
    reason = (
        f"probe of {probed[0].name} updates at batch {PROBE_BATCH}: bf16 {speedup:.2f}x "
        f"fp32's speed ({'at least' if resolved == BF16 else 'under'} {SPEEDUP_NEEDED}x)"
    )
    return PrecisionChoice(AUTO, resolved, reason, seconds)


def _device_blocker(device: str) -> str | None:
    import torch

    if device.startswith("cuda"):
        return None if torch.cuda.is_bf16_supported() else "the CUDA device has no bf16 support"
    return cpu_bf16_blocker(cpu_flags(), isa_cap())


def probe(spec: Any, device: str, threads: int) -> dict[str, float]:
    """Seconds per update of ``spec`` at batch :data:`PROBE_BATCH` in fp32 and under bf16
    autocast (two timed updates after one warm-up, each way), on ``threads`` torch threads."""
    import torch

    torch.set_num_threads(threads)
    seconds = {}
    for precision in (FP32, BF16):
        config = dataclasses.replace(
            with_precision(spec.default_config(), precision), batch_size=PROBE_BATCH
        )
        seconds[precision] = round(time_updates(spec, config, device, warmup=1, updates=2), 4)
    return seconds


# -- applying it -------------------------------------------------------------------------------
def takes_part(spec: Any) -> bool:
    """Pixel baselines with an autocast path follow the run's precision; state baselines (MLPs
    of a few hundred units, never measured under autocast) train in fp32 unless ``--set amp``."""
    return getattr(spec, "obs_kind", "pixels") == "pixels" and supports_autocast(
        spec.config_class()
    )


def supports_autocast(config_class: type) -> bool:
    """A baseline takes part when its config has the ``amp`` switch (bf16 autocast)."""
    return any(f.name == "amp" for f in dataclasses.fields(config_class))


def with_precision(config: Any, precision: str) -> Any:
    """``config`` with its ``amp`` switch set for ``precision`` (configs without one: as is)."""
    if not supports_autocast(type(config)):
        return config
    return dataclasses.replace(config, amp=precision == BF16)


def config_precision(config: Any) -> str:
    """The precision a cell with ``config`` trains in."""
    return BF16 if getattr(config, "amp", False) else FP32


# -- timing an update ----------------------------------------------------------------------
PROBE_WARMUP, PROBE_UPDATES = 2, 3


def time_updates(
    spec: Any, config: Any, device: str, warmup: int = PROBE_WARMUP, updates: int = PROBE_UPDATES
) -> float:
    """Seconds per update of ``spec`` with ``config``: ``updates`` timed after ``warmup``."""
    import torch

    agent = spec.agent_class()(config, (9, 84, 84), 6, torch.device(device))
    size = config.batch_size
    batch = TransitionBatch(
        obs=torch.randint(0, 256, (size, 9, 84, 84), dtype=torch.uint8, device=device),
        action=torch.rand((size, 6), device=device) * 2 - 1,
        reward=torch.rand((size, 1), device=device),
        next_obs=torch.randint(0, 256, (size, 9, 84, 84), dtype=torch.uint8, device=device),
        not_done=torch.ones((size, 1), device=device),
    )
    for _ in range(warmup):
        agent.update(batch)
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(updates):
        agent.update(batch)
    _synchronize(device)
    return (time.perf_counter() - started) / updates


def _synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
