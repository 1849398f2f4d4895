"""The GPU slot's command, end to end on this CPU (``--device cpu --scale smoke``), its plan and
its merge into a reference folder; the bundle's size check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from benchmark.harness.profiles import EXPERT, get
from benchmark.harness.results import ONLINE, Cell
from benchmark.lease import plan
from benchmark.lease.merge import merge

ROOT = Path(__file__).resolve().parents[1]
FULL = get("full")
PROBE = plan.Probe({spec.name: 0.01 for spec in plan.pixel_specs()}, step_s=0.002, start_s=30.0)
STEPS = {"sac-curl-online": 1_000}


def test_groups_start_with_the_original_comparison_on_expert() -> None:
    groups = plan.cell_groups("full", 3, plan.pixel_specs())
    first = groups[0]
    assert {(c.algo, c.dataset) for c in first} == {
        ("sac-curl-online", ONLINE),
        ("sac-curl-offline", EXPERT),
        ("cql-curl", EXPERT),
    }
    assert len(first) == 9 and {c.seed for c in first} == {0, 1, 2}
    assert {c.algo for c in groups[1]} == {"bc-pixels", "drqbc"}
    every = [cell for group in groups for cell in group]
    assert len(every) == len(set(every)) == 3 + 4 * 5 * 3  # online once per seed


def test_a_later_slot_continues_with_the_cells_not_done() -> None:
    groups = plan.cell_groups("full", 3, plan.pixel_specs())
    done = set(groups[0][:4])
    assert plan.pending_group(groups, done) == groups[0][4:]
    assert plan.pending_group(groups, set(groups[0])) == groups[1]
    every = {cell for group in groups for cell in group}
    assert plan.pending_group(groups, every) == ()


def test_fit_takes_the_most_updates_that_fit() -> None:
    cells = plan.cell_groups("full", 3, plan.pixel_specs())[0]
    chosen = plan.fit(cells, 3000.0, FULL, PROBE, 9, STEPS)
    assert chosen.cells == cells and chosen.updates % FULL.eval_interval == 0
    assert chosen.estimate_s <= 3000.0 * plan.PLAN_SAFETY
    more = plan.estimate_seconds(cells, chosen.updates + FULL.eval_interval, FULL, PROBE, 9, STEPS)
    assert more > 3000.0 * plan.PLAN_SAFETY


def test_fit_drops_seeds_when_even_one_evaluation_interval_is_too_long() -> None:
    cells = plan.cell_groups("full", 3, plan.pixel_specs())[0]
    one_seed = plan.estimate_seconds(
        [c for c in cells if c.seed == 0], FULL.eval_interval, FULL, PROBE, 9, STEPS
    )
    chosen = plan.fit(cells, one_seed / plan.PLAN_SAFETY + 1, FULL, PROBE, 9, STEPS)
    assert {c.seed for c in chosen.cells} == {0} and chosen.updates == FULL.eval_interval
    assert plan.fit(cells, 1.0, FULL, PROBE, 9, STEPS).cells == ()


def test_commands_run_cells_that_share_seeds_together() -> None:
    cells = (Cell("sac-curl-online", ONLINE, 0, "full"), Cell("cql-curl", EXPERT, 0, "full"),
             Cell("cql-curl", EXPERT, 1, "full"))
    commands = plan.SlotPlan(cells, 5_000, 1.0, 2.0).commands()
    assert sorted(commands) == [(("cql-curl",), EXPERT, (0, 1)), (("sac-curl-online",), EXPERT, (0,))]


def test_bundle_size_check(tmp_path: Path) -> None:
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir(), large.mkdir()
    (small / "a.whl").write_bytes(b"x" * 1000)
    with open(large / "big.whl", "wb") as file:  # 65 MiB: over the limit with any tree
        file.truncate(65 * 1024 * 1024)
    script = ROOT / "scripts" / "lease_bundle.sh"
    ok = subprocess.run(["bash", script, "--check-size", small], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "of 67108864 B" in ok.stdout
    over = subprocess.run(["bash", script, "--check-size", large], capture_output=True, text=True)
    assert over.returncode == 1 and "too large" in over.stderr


def test_the_slot_command_runs_end_to_end_on_cpu(tmp_path: Path) -> None:
    out, reference = tmp_path / "out", tmp_path / "reference"
    env = dict(os.environ, PYTHON=sys.executable, MINARI_DATASETS_PATH=str(tmp_path / "minari"),
               OMP_NUM_THREADS="1")
    command = ["bash", ROOT / "scripts" / "gpu_lease.sh", "--out", out, "--work", tmp_path / "work",
               "--device", "cpu", "--scale", "smoke", "--seeds", "1", "--budget", "12m",
               "--reference", reference, "--workers", "2"]
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stdout[-4000:]

    status = json.loads((out / "status.json").read_text())
    stages = {stage["name"]: stage["status"] for stage in status["stages"]}
    assert stages == {"install": "skipped", "datasets": "ok", "smoke": "ok", "speed": "ok",
                      "cells": "ok", "export": "ok"}
    assert sorted(p.name for p in out.iterdir()) == [
        "lease.log", "probe.json", "results.tar.gz", "status.json"
    ]  # within the 8 files a slot hands back (speed.json needs CUDA)
    assert "checkpoint round trip ok" in (out / "lease.log").read_text()
    planned = {Cell(**cell) for cell in status["plan"]["cells"]}
    assert planned == set(plan.cell_groups("smoke", 1, plan.pixel_specs())[0])
    with tarfile.open(out / "results.tar.gz") as archive:
        assert sum(name.endswith("/done") for name in archive.getnames()) == len(planned)

    board = merge(out, reference)
    assert board.is_file() and (reference / "figures").is_dir()
    assert (reference / "slots" / status["slot_id"] / "lease.log").is_file()
    assert plan.done_cells(reference) == planned  # the next slot goes on from here
    groups = plan.cell_groups("smoke", 1, plan.pixel_specs())
    assert plan.pending_group(groups, plan.done_cells(reference)) == groups[1]


@pytest.mark.parametrize("bad", ["--scale huge", "--device tpu"])
def test_bad_arguments_name_the_valid_ones(tmp_path: Path, bad: str) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "benchmark.lease", "--out", tmp_path, "--work", tmp_path, *bad.split()],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert finished.returncode == 2 and "invalid choice" in finished.stderr
