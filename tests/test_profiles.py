"""Per-baseline update counts in a profile: what a cell trains, when it is evaluated, and that
the counts are recorded with its results."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from benchmark.harness import profiles, runner
from benchmark.harness.results import CellPaths, load_results

UNEVEN = dataclasses.replace(
    profiles.get("smoke"),
    name="smoke-uneven",
    updates=4,
    eval_interval=2,
    config_overrides=(("batch_size", 4), ("initial_random_steps", 5), ("replay_capacity", 100)),
    algo_updates=(("sac-curl-online", 8),),
)


def test_updates_and_evaluation_interval_per_baseline() -> None:
    assert UNEVEN.updates_for("sac-curl-online") == 8 and UNEVEN.updates_for("bc-pixels") == 4
    # As many evaluations for every baseline, at the same fractions of its run.
    assert UNEVEN.eval_interval_for("sac-curl-online") == 4 and UNEVEN.eval_interval_for("bc-pixels") == 2
    assert UNEVEN.to_json()["algo_updates"] == {"sac-curl-online": 8}
    assert "(sac-curl-online: 8 updates, evaluation every 4)" in UNEVEN.describe()
    assert profiles.get("full").updates_for("bc-pixels") == 1_000_000


def test_a_cell_trains_its_baselines_update_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(profiles.PROFILES, UNEVEN.name, UNEVEN)
    cell = runner.Cell("sac-curl-online", "online", 0, UNEVEN.name)
    task = runner.CellTask(cell, str(tmp_path), "cpu", threads=1, dataset_id=None, progress=False)
    assert runner.run_cell(task).status == "done"
    assert load_results(tmp_path)["update"].tolist() == [4, 8]
    meta = json.loads(CellPaths.of(tmp_path, cell).meta.read_text())
    assert meta["setup"]["profile"]["algo_updates"] == {"sac-curl-online": 8}
