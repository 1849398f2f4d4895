"""Vectorised seeds through the harness (``--vectorize-seeds on``, benchmark/harness/seed_groups.py) on
real smoke-scale cells: every seed stays a cell (rows, metrics, checkpoint, ``done``); a group
stopped by the time budget and resumed equals an uninterrupted group, seed by seed; a diverged
seed fails alone and its siblings' results are untouched; seeds stopped at different points are
refused with a message; vectorised seeds learn like separately trained ones."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from baselines.bc import BCAgent
from baselines.common.members import EnsembleLinear
from benchmark import run
from benchmark.harness import registry, runner
from benchmark.harness.results import Cell, CellPaths, load_results, read_metrics
from benchmark.harness.runner import CellTask
from benchmark.harness.seed_groups import GroupTask, group_tasks

RANDOM = "vorb/walker-walk/random-v0"
SEEDS = ("--seeds", "3")
SHORT = ("--set", "updates=12", "--set", "eval_interval=4")


@pytest.fixture(autouse=True)
def _threads(restore_torch_threads: None) -> None:
    """Every test here restores torch's thread count (tests/conftest.py)."""


def argv(root: Path, algo: str, *extra: str, vectorize: bool = True) -> list[str]:
    mode = ("--vectorize-seeds", "on") if vectorize else ()
    return [
        *("--profile", "smoke", "--results", str(root), "--device", "cpu", "--algos", algo),
        *SEEDS,
        *mode,
        *extra,
    ]


def paths(root: Path, algo: str, seed: int) -> CellPaths:
    return CellPaths.of(root, Cell(algo, RANDOM, seed, "smoke"))


def without_seconds(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns="seconds").reset_index(drop=True)


# -- each seed stays a cell ------------------------------------------------------------------------
def test_vectorised_seeds_give_the_tables_of_separate_cells(
    tmp_path: Path, in_process: None
) -> None:
    for vectorize in (True, False):
        root = tmp_path / ("group" if vectorize else "alone")
        assert run.main(argv(root, "td3bc-state", *SHORT, vectorize=vectorize)) == 0
    group, alone = load_results(tmp_path / "group"), load_results(tmp_path / "alone")
    assert list(group.columns) == list(alone.columns)
    keys = ["algo", "dataset", "seed", "profile", "update", "observation"]
    pd.testing.assert_frame_equal(group[keys], alone[keys])
    assert sorted(group["update"].unique()) == [4, 8, 12]
    for seed in range(3):
        mine, theirs = (
            paths(tmp_path / "group", "td3bc-state", seed),
            paths(tmp_path / "alone", "td3bc-state", seed),
        )
        assert mine.done.exists() and mine.checkpoint.exists()
        assert list(read_metrics(mine.metrics).columns) == list(
            read_metrics(theirs.metrics).columns
        )
        setup = json.loads(mine.meta.read_text())["setup"]
        assert setup["vectorized"] == {"seeds": [0, 1, 2], "member": seed}
        assert "vectorized" not in json.loads(theirs.meta.read_text())["setup"]
        modes = [json.loads(c.meta.read_text())["vectorize_seeds"] for c in (mine, theirs)]
        assert modes == ["on", "off"]
    # Three different models, not one model copied three times.
    assert group.groupby("seed")["return_mean"].last().nunique() == 3


# -- time budget and resume ------------------------------------------------------------------------
class SteppingClock:
    """A wall clock that advances one second per reading (one reading per update)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def budgeted(command: list[str], seconds: int) -> None:
    """The command under a budget of ``seconds`` clock readings (about one per update)."""
    with pytest.MonkeyPatch.context() as patch:  # undone here; the in-process launcher stays
        patch.setattr(runner, "_now", SteppingClock())
        patch.setattr(run, "budget_reserve", lambda budget: 0.0)
        assert run.main([*command, "--time-budget", f"{seconds}s"]) == run.EXIT_INCOMPLETE


def test_a_budgeted_group_then_resumed_equals_an_uninterrupted_one_seed_by_seed(
    tmp_path: Path, in_process: None
) -> None:
    algo = "sac-state-offline"  # sampled actions, temperature, targets: every kind of state
    assert run.main(argv(tmp_path / "whole", algo, *SHORT)) == 0
    split = argv(tmp_path / "split", algo, *SHORT)
    budgeted(split, 7)
    updates = {
        torch.load(paths(tmp_path / "split", algo, s).checkpoint, weights_only=False)["trainer"][
            "updates"
        ]
        for s in range(3)
    }
    assert len(updates) == 1 and 0 < updates.pop() < 12  # every seed stopped at one update
    assert run.main(split) == 0
    whole, resumed = load_results(tmp_path / "whole"), load_results(tmp_path / "split")
    pd.testing.assert_frame_equal(without_seconds(resumed), without_seconds(whole))
    for seed in range(3):
        pd.testing.assert_frame_equal(
            read_metrics(paths(tmp_path / "split", algo, seed).metrics),
            read_metrics(paths(tmp_path / "whole", algo, seed).metrics),
        )


def test_seeds_stopped_at_different_points_are_refused_and_can_restart(
    tmp_path: Path, in_process: None
) -> None:
    command = argv(tmp_path, "bc-state", *SHORT)
    budgeted(command, 3)
    lagging = paths(tmp_path, "bc-state", 1)
    old = tmp_path / "old-checkpoint.pt"
    shutil.copy(lagging.checkpoint, old)
    budgeted(command, 8)
    shutil.copy(old, lagging.checkpoint)  # as if a kill fell between two checkpoint writes
    assert run.main(command) == run.EXIT_FAILED_CELLS
    error = json.loads(lagging.failed.read_text())["error"]
    assert "seed 1 stopped at update" in error and "seeds [0, 1, 2]" in error
    assert f"delete {lagging.folder}" in error
    assert paths(tmp_path, "bc-state", 0).done.exists()
    assert paths(tmp_path, "bc-state", 2).done.exists()
    shutil.rmtree(lagging.folder)  # what the message says: it restarts (now alone) and finishes
    assert run.main(command) == 0
    assert lagging.done.exists()
    assert "vectorized" not in json.loads(lagging.meta.read_text())["setup"]


# -- failure isolation -----------------------------------------------------------------------------
class DivergingBC(BCAgent):
    """BC whose member 0 blows up at its 6th update (a fault injected into a real agent)."""

    def update(self, batch: Any) -> dict[str, torch.Tensor]:
        self.updates_done = getattr(self, "updates_done", 0) + 1
        if self.members and self.updates_done == 6:
            with torch.no_grad():
                layer = next(m for m in self.actor.modules() if isinstance(m, EnsembleLinear))
                layer.weight[0] = float("nan")
        return super().update(batch)


def test_a_diverged_seed_fails_alone_and_leaves_its_siblings_untouched(
    tmp_path: Path, in_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = registry.get("bc-state")
    spec = dataclasses.replace(
        base, name="diverging-bc", agent=f"{__name__}:DivergingBC", origin="script"
    )
    monkeypatch.setitem(registry._REGISTRY, spec.name, spec)
    assert run.main(argv(tmp_path / "bad", "diverging-bc", *SHORT)) == run.EXIT_FAILED_CELLS
    error = json.loads(paths(tmp_path / "bad", "diverging-bc", 0).failed.read_text())["error"]
    assert "DivergedError" in error and "updates 5..8" in error
    assert run.main(argv(tmp_path / "good", "bc-state", *SHORT)) == 0
    bad, good = load_results(tmp_path / "bad"), load_results(tmp_path / "good")
    assert set(bad["seed"]) == {0, 1, 2}  # seed 0 keeps its rows up to the divergence
    assert list(bad[bad["seed"] == 0]["update"]) == [4]
    siblings = lambda frame: without_seconds(frame[frame["seed"] > 0]).drop(columns="algo")  # noqa: E731
    pd.testing.assert_frame_equal(siblings(bad), siblings(good))
    for seed in (1, 2):
        assert paths(tmp_path / "bad", "diverging-bc", seed).done.exists()


# -- pixels ------------------------------------------------------------------------------------------
def test_pixel_seeds_vectorise_with_the_tables_of_separate_cells(
    tmp_path: Path, in_process: None
) -> None:
    """Pixel BC and CQL-CURL (grouped-conv encoder, augmentation, CURL, momentum encoder) at
    smoke scale: every seed a finished cell of its own, three different models."""
    for algo in ("bc-pixels", "cql-curl"):
        assert run.main(argv(tmp_path, algo, "--set", "updates=4", "--set", "eval_interval=2")) == 0
        for seed in range(3):
            cell = paths(tmp_path, algo, seed)
            assert cell.done.exists()
            setup = json.loads(cell.meta.read_text())["setup"]
            assert setup["vectorized"]["member"] == seed and setup["observation"] == "pixels"
    table = load_results(tmp_path)
    assert len(table) == 2 * 3 * 2 and set(table["observation"]) == {"pixels"}
    cql = table[table["algo"] == "cql-curl"]
    assert (
        cql["q_estimate"].notna().all() and cql.groupby("seed")["q_estimate"].last().nunique() == 3
    )


# -- it learns the same ----------------------------------------------------------------------------
def test_vectorised_seeds_learn_like_separate_ones(tmp_path: Path, in_process: None) -> None:
    """td3bc-state over 300 updates: at each logged point, the vectorised seeds' mean critic and
    actor losses, and their final scores, lie within the separate seeds' spread (3 seeds each)."""
    extra = ("--set", "updates=300", "--set", "eval_interval=100")
    for vectorize in (True, False):
        root = tmp_path / ("group" if vectorize else "alone")
        assert run.main(argv(root, "td3bc-state", *extra, vectorize=vectorize)) == 0

    def curves(root: Path) -> pd.DataFrame:
        frames = [read_metrics(paths(root, "td3bc-state", s).metrics) for s in range(3)]
        return pd.concat(frames)

    group, alone = curves(tmp_path / "group"), curves(tmp_path / "alone")
    for metric in ("critic_loss", "actor_loss"):
        for update, mine in group.groupby("update")[metric]:
            theirs = alone[alone["update"] == update][metric]
            spread = theirs.max() - theirs.min() + mine.max() - mine.min()
            assert abs(mine.mean() - theirs.mean()) <= spread, (metric, update)
    # The final scores too (smoke scale: one 20-step episode an evaluation, so only "within
    # the seeds' spread" is asked).
    scores = {
        name: load_results(tmp_path / name).groupby("seed")["normalized_score"].last()
        for name in ("group", "alone")
    }
    spread = sum(score.max() - score.min() for score in scores.values())
    assert abs(scores["group"].mean() - scores["alone"].mean()) <= spread, scores
    # And the losses moved: a group that did not learn would pass the checks above trivially.
    first, last = (group[group["update"] == u]["critic_loss"].mean() for u in (100, 300))
    assert np.isfinite(first) and last != first


# -- grouping ---------------------------------------------------------------------------------------
def task(root: Path, algo: str, seed: int, dataset: str = RANDOM) -> CellTask:
    return CellTask(Cell(algo, dataset, seed, "smoke"), str(root), "cpu", 1, dataset)


def test_grouping_keeps_online_and_separately_started_cells_as_cells(tmp_path: Path) -> None:
    tasks = [task(tmp_path, "bc-state", s) for s in range(3)]
    tasks += [task(tmp_path, "sac-state-online", 0, "online")]
    started_alone = task(tmp_path, "td3bc-state", 0)
    CellPaths.of(tmp_path, started_alone.cell).folder.mkdir(parents=True)
    CellPaths.of(tmp_path, started_alone.cell).meta.write_text(json.dumps({"setup": {}}))
    tasks += [started_alone, task(tmp_path, "td3bc-state", 1)]
    units = group_tasks(tasks)
    groups = [unit for unit in units if isinstance(unit, GroupTask)]
    assert [group.seeds for group in groups] == [(0, 1, 2)]
    cells = [unit.cell for unit in units if isinstance(unit, CellTask)]
    assert {(c.algo, c.seed) for c in cells} == {
        ("sac-state-online", 0),
        ("td3bc-state", 0),
        ("td3bc-state", 1),  # alone in its group of one
    }


def test_plan_lists_every_seed_as_a_cell_and_says_they_train_together(
    capsys: pytest.CaptureFixture[str],
) -> None:
    command = ["--plan", "--profile", "state", "--algos", "bc-state", "--seeds", "3"]
    assert run.main([*command, "--datasets", RANDOM, "--vectorize-seeds", "on"]) == 0
    out = capsys.readouterr().out
    assert "3 cells:" in out and out.count("bc-state ") == 3
    assert "train as one" in out
    with pytest.raises(SystemExit):
        run.main([*command, "--vectorize-seeds", "maybe"])
    assert "--vectorize-seeds: invalid choice: 'maybe'" in capsys.readouterr().err
