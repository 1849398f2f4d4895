"""The CLI end to end in subprocesses at smoke scale: every baseline, SIGKILL and resume, Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from benchmark.harness import registry
from benchmark.harness.precision import cpu_flags
from benchmark.harness.results import (
    RESULT_CPU_FLAGS,
    Cell,
    CellPaths,
    cell_progress,
    load_results,
    read_evals,
    write_json,
)

RANDOM = "vorb/walker-walk/random-v0"
REPO = Path(__file__).resolve().parent.parent


def command(results: Path, *extra: str) -> list[str]:
    base = [sys.executable, "-m", "benchmark.run", "--profile", "smoke", "--device", "cpu"]
    return [*base, "--results", str(results), *extra]


def run_cli(results: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(results, *extra), cwd=REPO, capture_output=True, text=True, timeout=600
    )


def comparable(table: pd.DataFrame) -> pd.DataFrame:
    """Everything but wall-clock time, which no two runs share."""
    return table.drop(columns="seconds").reset_index(drop=True)


def test_smoke_run_of_every_baseline(tmp_path: Path) -> None:
    done = run_cli(tmp_path / "r", "--algos", "all", "--workers", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    table = load_results(tmp_path / "r")
    names = registry.names()
    assert sorted(table["algo"].unique()) == sorted(names)
    for name in names:
        rows = table[table["algo"] == name]
        online = not registry.get(name).offline
        assert rows["dataset"].unique().tolist() == ["online" if online else RANDOM]
        assert rows["update"].tolist() == [2, 4]  # every 2 updates and at the end
        assert (rows["env_steps"] > 0).all() == online
        assert rows["normalized_score"].notna().all() and (rows["profile"] == "smoke").all()
    metas = [json.loads(p.read_text()) for p in (tmp_path / "r").rglob("meta.json")]
    assert len(metas) == len(names) and {m["status"] for m in metas} == {"done"}
    assert all(m["setup"]["config"]["batch_size"] == 8 for m in metas)
    assert all(m["setup"]["profile"]["name"] == "smoke" and m["versions"]["torch"] for m in metas)
    flags = cpu_flags()  # the machine's own features, as every cell records them
    expected_flags = None if flags is None else [f for f in RESULT_CPU_FLAGS if f in flags]
    assert all(m["host"]["cpu_flags"] == expected_flags and m["host"]["cpu"] for m in metas)
    assert "done" in done.stdout and "final" in done.stdout  # the summary table

    again = run_cli(tmp_path / "r", "--algos", "all", "--workers", "2")
    assert again.returncode == 0 and again.stdout.count("skipped") == len(names)
    assert comparable(load_results(tmp_path / "r")).equals(comparable(table))


def files_intact(root: Path) -> None:
    """Every file of every cell parses: no half-written table, metadata or checkpoint."""
    for path in root.rglob("evals.csv"):
        read_evals(path)
    for path in root.rglob("*.json"):
        json.loads(path.read_text())
    for path in root.rglob("checkpoint.pt"):
        torch.load(path, weights_only=False)


def kill_after_first_checkpoint(results: Path, *extra: str) -> None:
    process = subprocess.Popen(
        command(results, *extra),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes the workers too
    )
    deadline = time.monotonic() + 300
    while not any(results.rglob("checkpoint.pt")):
        assert process.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def killed_states(results: Path) -> list[str]:
    cells = (Cell("sac-curl-offline", RANDOM, seed, "smoke") for seed in (0, 1))
    return sorted(cell_progress(results, cell).state for cell in cells)


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    args = ("--algos", "sac-curl-offline", "--seeds", "2", "--workers", "1")  # cells in turn
    kill_after_first_checkpoint(tmp_path / "killed", *args)
    files_intact(tmp_path / "killed")
    finished = sorted((tmp_path / "killed").rglob("done"))
    assert len(finished) < 2, "everything finished before the kill: nothing was tested"
    # The killed cell is told apart from one running now once its dying worker lets go of the
    # cell's lock (the kernel frees it when the process is gone: within moments).
    deadline = time.monotonic() + 30
    while (states := killed_states(tmp_path / "killed")).count("running"):
        assert time.monotonic() < deadline, states
        time.sleep(0.05)
    assert states in (["interrupted", "new"], ["finished", "interrupted"]), states
    kept = {path.parent: read_evals(path.parent / "evals.csv") for path in finished}

    resumed = run_cli(tmp_path / "killed", *args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    files_intact(tmp_path / "killed")
    for folder, before in kept.items():  # finished cells were skipped, their rows untouched
        assert read_evals(folder / "evals.csv").equals(before)

    fresh = run_cli(tmp_path / "fresh", *args)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    killed, uninterrupted = load_results(tmp_path / "killed"), load_results(tmp_path / "fresh")
    assert len(uninterrupted) == 4
    pd.testing.assert_frame_equal(comparable(killed), comparable(uninterrupted))


@pytest.mark.filterwarnings("ignore")
def test_ray_launcher_runs_a_cell_on_a_local_instance(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    done = run_cli(tmp_path / "r", "--algos", "sac-curl-offline", "--launcher", "ray")
    assert done.returncode == 0, done.stderr[-3000:]
    table = load_results(tmp_path / "r")
    assert table["algo"].tolist() == ["sac-curl-offline"] * 2 and table["update"].tolist() == [2, 4]


def test_a_run_logged_to_a_file_writes_one_line_per_cell_event(tmp_path: Path) -> None:
    """Output to a file, not a terminal: no progress bars (no carriage returns, no partial
    lines), one timestamped line per cell event and summaries of the cells."""
    log = tmp_path / "run.log"
    args = ("--algos", "bc-pixels,sac-curl-offline", "--workers", "2", "--summary-every", "1s")
    with log.open("w") as out:
        done = subprocess.run(
            command(tmp_path / "r", *args),
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    text = log.read_text()
    assert done.returncode == 0, text[-3000:]
    assert "\r" not in text and "upd/s" not in text and "it/s" not in text
    for algo in ("bc-pixels", "sac-curl-offline"):
        label = f"{algo} | {RANDOM} | seed 0"
        events = [
            line.split(f"[cell] {label}: ", 1)[1]
            for line in text.splitlines()
            if f"[cell] {label}: " in line
        ]
        assert events[0] == "start at update 0 of 4"
        assert events[1].startswith("evaluation at update 2 of 4: return ")
        assert events[2] == "checkpoint at update 2"
        assert events[3].startswith("evaluation at update 4 of 4: ")
        assert events[4] == "checkpoint at update 4"
        assert events[5].startswith("done after 4 updates: final ")
        assert len(events) == 6
    summaries = [
        line for line in text.splitlines() if "[run] " in line and "cells finished" in line
    ]
    assert summaries and "2 of 2 cells finished (done 2), 0 to go" in summaries[-1]


def test_a_rerun_right_after_kill_9_of_the_whole_run_waits_and_finishes(tmp_path: Path) -> None:
    """Every baseline's smoke grid, its process group SIGKILLed once half its cells hold a
    checkpoint, the same command started at once: it waits for locks still held by dying
    workers (runner.LOCK_WAIT_S), finishes every cell and gives an uninterrupted run's tables."""
    args = ("--algos", "all", "--workers", "2")
    process = subprocess.Popen(
        command(tmp_path / "killed", *args),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while len(list((tmp_path / "killed").rglob("checkpoint.pt"))) < len(registry.names()) // 2:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    rerun = run_cli(tmp_path / "killed", *args)  # at once: no wait for the group to be reaped
    process.wait()
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "busy" not in rerun.stdout
    fresh = run_cli(tmp_path / "fresh", *args)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    killed, uninterrupted = load_results(tmp_path / "killed"), load_results(tmp_path / "fresh")
    pd.testing.assert_frame_equal(comparable(killed), comparable(uninterrupted))


def test_a_held_cell_lock_is_waited_for_a_bounded_time(tmp_path: Path) -> None:
    """A lock held by a process that is going away is taken once it goes; one held past the
    wait is reported busy."""
    from benchmark.harness.runner import cell_lock

    held_cell = Cell("bc-state", RANDOM, 0, "smoke")
    paths = CellPaths.of(tmp_path, held_cell)
    paths.folder.mkdir(parents=True)
    write_json(paths.meta, {"status": "running"})  # as a cell leaves it while it trains
    holder = (
        "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX);"
        "print('held', flush=True); time.sleep(float(sys.argv[2]))"
    )
    for hold_s, wait_s, expected in ((1.0, 30.0, True), (5.0, 0.5, False)):
        child = subprocess.Popen(
            [sys.executable, "-c", holder, str(paths.folder / ".lock"), str(hold_s)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        assert cell_progress(tmp_path, held_cell).state == "running"  # meta says running
        started = time.monotonic()
        with cell_lock(paths, wait_s=wait_s) as locked:
            assert locked == expected
        assert time.monotonic() - started < wait_s + 1
        child.kill()
        child.wait()
    assert cell_progress(tmp_path, held_cell).state == "interrupted"  # nobody holds it now
