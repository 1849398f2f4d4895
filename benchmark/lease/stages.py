"""The stage record of a slot: each stage's outcome written to ``status.json`` before the next
starts, and each stage's command run in its own process group under a deadline, so a stage that
hangs is killed with its workers and the slot goes on to the next stage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark.atomic import atomic_write_text

KILL_GRACE_S = 10.0  # after SIGTERM: the run's workers write their checkpoint state, then exit


@dataclass
class StageResult:
    name: str
    status: str  # "ok", "failed", "timeout", "skipped"
    seconds: float
    detail: str = ""
    commands: list[str] = field(default_factory=list)


@dataclass
class SlotRecord:
    """Everything ``status.json`` holds; rewritten atomically after each stage."""

    path: Path
    header: dict[str, Any]
    started: float  # time.time() at the slot's start (the budget counts from it)
    budget_s: float
    stages: list[StageResult] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def left_s(self) -> float:
        return self.budget_s - (time.time() - self.started)

    def add(self, result: StageResult) -> None:
        self.stages.append(result)
        print(
            f"[lease] stage {result.name}: {result.status} in {result.seconds:.1f} s"
            f"{'; ' + result.detail if result.detail else ''}",
            flush=True,
        )
        self.write()

    def ok(self, name: str) -> bool:
        return any(stage.name == name and stage.status == "ok" for stage in self.stages)

    def write(self) -> None:
        record = {
            **self.header,
            "budget_s": self.budget_s,
            "elapsed_s": round(time.time() - self.started, 1),
            "stages": [asdict(stage) for stage in self.stages],
            **self.extra,
        }
        atomic_write_text(self.path, json.dumps(record, indent=2) + "\n")


def run_command(
    argv: Sequence[str], deadline: float, env: dict[str, str] | None = None
) -> tuple[int | None, float]:
    """Run ``argv`` (output to this process's stdout) until ``deadline`` (``time.time()``);
    returns (exit status or None if it was killed at the deadline, seconds)."""
    print(f"[lease] $ {' '.join(argv)}", flush=True)
    started = time.time()
    process = subprocess.Popen(
        list(argv), env=env, stdout=sys.stdout, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        return process.wait(timeout=max(1.0, deadline - started)), time.time() - started
    except subprocess.TimeoutExpired:
        _stop_group(process)
        return None, time.time() - started


def _stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the stage's process group (it and its workers), SIGKILL after a grace time."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
