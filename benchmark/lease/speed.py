"""The GPU speed suite of a slot: ``benchmarks/test_bench_gpu.py`` one baseline at a time, each
run's pytest-benchmark JSON merged into one ``speed.json`` as soon as it exists (a kill midway
keeps the baselines measured so far), then the learn-alike checks (``tests/test_gpu_paths.py``)
whose outcomes are added to the same file."""

from __future__ import annotations

import json
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from benchmark.atomic import atomic_write_text
from benchmark.lease.stages import StageResult, run_command

BENCH = "benchmarks/test_bench_gpu.py"
LEARN_ALIKE = "tests/test_gpu_paths.py"


# The pixel baselines the GPU suite times (benchmarks/test_bench_gpu.py), one pytest call each.
GPU_BENCH_NAMES = ("sac-curl-offline", "cql-curl", "bc-pixels", "drqbc")


def _pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]


def merge_benchmarks(out: Path, part: Path) -> None:
    """Add the benchmarks of one pytest-benchmark JSON file to ``out``."""
    record = json.loads(out.read_text()) if out.is_file() else {"benchmarks": []}
    new = json.loads(part.read_text())
    record["machine_info"] = new.get("machine_info")
    record["benchmarks"] += [
        {key: bench[key] for key in ("name", "params", "stats", "extra_info") if key in bench}
        for bench in new["benchmarks"]
    ]
    atomic_write_text(out, json.dumps(record, indent=2) + "\n")


def learn_alike_outcomes(junit: Path) -> dict[str, str]:
    """test id -> passed / failed / skipped, from pytest's JUnit XML."""
    outcomes = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        outcomes[case.get("name", "?")] = "failed" if failed else "skipped" if skipped else "passed"
    return outcomes


def gpu_suite(out: Path, work: Path, deadline: float, env: dict[str, str]) -> StageResult:
    """Every baseline's variants timed, then the learn-alike checks, until ``deadline``."""
    result = StageResult("speed", "ok", 0.0)
    for name in GPU_BENCH_NAMES:
        part = work / f"speed-{name}.json"
        command = _pytest(BENCH, "--benchmark-only", f"--benchmark-json={part}", "-k", name)
        result.commands.append(" ".join(command))
        rc, seconds = run_command(command, deadline, env)
        result.seconds += seconds
        if part.is_file():
            merge_benchmarks(out, part)
        if rc != 0:
            result.status = "timeout" if rc is None else "failed"
            result.detail = (
                f"benchmark of {name}: {'killed at the deadline' if rc is None else f'exit {rc}'}"
            )
            return result
    junit = work / "learn-alike.xml"
    command = _pytest(LEARN_ALIKE, f"--junitxml={junit}")
    result.commands.append(" ".join(command))
    rc, seconds = run_command(command, deadline, env)
    result.seconds += seconds
    if junit.is_file():
        record = json.loads(out.read_text()) if out.is_file() else {"benchmarks": []}
        record["learn_alike"] = learn_alike_outcomes(junit)
        record["written"] = time.time()
        atomic_write_text(out, json.dumps(record, indent=2) + "\n")
    if rc != 0:
        result.status = "timeout" if rc is None else "failed"
        result.detail = (
            f"learn-alike checks: {'killed at the deadline' if rc is None else f'exit {rc}'}"
        )
    return result
