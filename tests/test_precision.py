"""Precision by measurement: what decides bf16 autocast, that oneDNN's ISA cap really turns the
native bf16 kernels off, and that each cell records the precision it trained in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_run import in_process

from benchmark import run
from benchmark.harness import precision, registry, runner
from benchmark.harness.precision import BF16, FP32, cpu_bf16_blocker, cpu_flags, isa_cap
from benchmark.report import leaderboard as report

REPO = Path(__file__).resolve().parent.parent
CAP = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI"}  # a CPU without AVX512-BF16, on one with it
HAS_NATIVE_BF16 = cpu_bf16_blocker(cpu_flags(), None) is None

CPUINFO = """processor\t: 0
flags\t\t: fpu sse2 avx2 avx512f avx512_vnni {extra}
bogomips\t: 5600.00
"""


def test_cpu_flags_decide_without_a_probe_where_bf16_cannot_be_native() -> None:
    without = cpu_flags(CPUINFO.format(extra=""))
    assert "avx512_vnni" in without and "avx512_bf16" not in without
    assert "avx512_bf16 nor amx_bf16" in str(cpu_bf16_blocker(without, None))
    native = cpu_flags(CPUINFO.format(extra="avx512_bf16"))
    assert cpu_bf16_blocker(native, None) is None
    assert "caps oneDNN below" in str(cpu_bf16_blocker(native, "AVX512_CORE_VNNI"))
    assert cpu_bf16_blocker(native, "AVX512_CORE_AMX") is None
    assert cpu_bf16_blocker(None, None) is None  # no /proc/cpuinfo: the probe decides
    assert isa_cap({"ONEDNN_MAX_CPU_ISA": "avx512_core_vnni"}) == "AVX512_CORE_VNNI"
    assert isa_cap({}) is None


def onednn_kernels(environ: dict[str, str]) -> str:
    """oneDNN's verbose log of one bf16 conv and matmul in a fresh process (the cap is read
    when oneDNN starts)."""
    code = (
        "import torch; torch.set_num_threads(1)\n"
        "c = torch.nn.Conv2d(9, 32, 3).bfloat16()\n"
        "c(torch.randn(2, 9, 20, 20, dtype=torch.bfloat16))\n"
        "a = torch.randn(64, 64, dtype=torch.bfloat16); a @ a\n"
    )
    env = {**os.environ, "ONEDNN_VERBOSE": "1", **environ}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


@pytest.mark.skipif(not HAS_NATIVE_BF16, reason="this CPU has no native bf16 to turn off")
def test_onednn_isa_cap_turns_the_native_bf16_kernels_off() -> None:
    native = onednn_kernels({})
    assert "convolution,jit_bf16:avx512_core_bf16" in native
    capped = onednn_kernels(CAP)
    assert "convolution,jit_bf16:avx512_core," in capped  # bf16 emulated on AVX512_CORE
    assert "avx512_core_bf16" not in capped and "bfloat16 support" not in capped


def test_auto_under_the_isa_cap_is_fp32_without_a_probe() -> None:
    code = (
        "import json; from benchmark.harness import precision, registry\n"
        "choice = precision.resolve('auto', 'cpu', [registry.get('bc-pixels')], 1)\n"
        "print(json.dumps(choice.to_json()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **CAP},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    choice = json.loads(done.stdout)
    assert choice["resolved"] == FP32 and choice["seconds_per_update"] == {}
    assert ("AVX512_CORE_VNNI" in choice["reason"]) == HAS_NATIVE_BF16


@pytest.mark.skipif(not HAS_NATIVE_BF16, reason="no native bf16: the flags decide, no probe")
def test_auto_with_native_bf16_is_decided_by_a_probe_of_both() -> None:
    threads = torch.get_num_threads()
    try:
        choice = precision.resolve("auto", "cpu", [registry.get("drqbc"), registry.get("bc-pixels")], 1)
    finally:
        torch.set_num_threads(threads)
    assert choice.resolved in (FP32, BF16) and "probe of bc-pixels updates" in choice.reason
    assert set(choice.seconds_per_update) == {FP32, BF16}
    assert all(seconds > 0 for seconds in choice.seconds_per_update.values())


def test_a_precision_asked_for_is_not_probed_and_without_autocast_is_fp32() -> None:
    choice = precision.resolve("bf16", "cpu", [registry.get("bc-pixels")], 1)
    assert (choice.resolved, choice.reason) == (BF16, "asked for")
    state_bc = registry.get("bc-state")  # its config has the switch; state baselines stay fp32
    choice = precision.resolve("auto", "cpu", [registry.get("drqbc"), state_bc], 1)
    assert choice.resolved == FP32 and "no selected pixel baseline" in choice.reason


def test_an_unknown_precision_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run.main(["--plan", "--profile", "smoke", "--set", "precision=fp16"])
    assert exit_info.value.code == run.EXIT_USAGE
    assert "precision='fp16' (valid: one of fp32, bf16, auto)" in capsys.readouterr().err


def test_each_cell_records_its_precision_and_never_resumes_in_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "run_local", in_process)
    threads = torch.get_num_threads()
    argv = ["--profile", "smoke", "--device", "cpu", "--results", str(tmp_path / "r")]
    try:
        assert run.main([*argv, "--algos", "bc-pixels,drqbc", "--set", "precision=bf16"]) == 0
        metas = {
            m["cell"]["algo"]: m
            for m in (json.loads(p.read_text()) for p in (tmp_path / "r").rglob("meta.json"))
        }
        assert metas["bc-pixels"]["setup"]["precision"] == BF16 and metas["bc-pixels"]["setup"]["config"]["amp"]
        assert metas["drqbc"]["setup"]["precision"] == FP32  # DrQ+BC has no autocast path
        assert metas["bc-pixels"]["precision"] == {
            "requested": BF16,
            "resolved": BF16,
            "reason": "asked for",
            "seconds_per_update": {},
        }
        # The same cells asked for in fp32: finished ones are not taken as fp32 results.
        assert run.main([*argv, "--algos", "bc-pixels", "--set", "precision=fp32"]) == 1
    finally:
        torch.set_num_threads(threads)
    assert report.main(["--results", str(tmp_path / "r"), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "- Precision (bf16 = bf16 autocast): bf16: bc-pixels; fp32: drqbc" in text
