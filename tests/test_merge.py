"""Results from several folders: merging, unreadable tables, and exports without checkpoints."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from benchmark import run
from benchmark.atomic import atomic_write_text
from benchmark.harness.results import (
    Cell,
    CellPaths,
    EvalRow,
    MergeConflict,
    TableError,
    load_results,
    read_evals,
    select_cells,
    write_json,
    write_rows,
)
from benchmark.report import export_results
from benchmark.report import leaderboard as report

EXPERT = "vorb/walker-walk/expert-v0"
RANDOM = "vorb/walker-walk/random-v0"


def write_cell(root: Path, cell: Cell, updates: list[int], level: float, done: bool = True) -> Path:
    """A cell as the harness leaves it: evals.csv, metrics.csv, meta.json, done."""
    paths = CellPaths.of(root, cell)
    rows = [
        EvalRow(cell.algo, cell.dataset, cell.seed, cell.profile, u, 0, level * u, 1.0, level, 1.0)
        for u in updates
    ]
    write_rows(paths.evals, rows)
    metrics = pd.DataFrame({"update": updates, "loss": [level] * len(updates)})
    atomic_write_text(paths.folder / "metrics.csv", metrics.to_csv(index=False))
    evaluation = {"episodes": 1, "time_limit_s": 5.0, "seeds": [10000]}
    references = {"min_score": 0.0, "max_score": 100.0, "source": f"dataset:{root.name}"}
    setup = {"references": references, "evaluation": evaluation}
    write_json(paths.meta, {"setup": setup, "git": {"commit": root.name}})
    if done:
        atomic_write_text(paths.done, "done\n")
    return paths.folder


def cell(algo: str = "bc-pixels", dataset: str = RANDOM, seed: int = 0) -> Cell:
    return Cell(algo, dataset, seed, "demo")


def test_the_copy_with_more_updates_wins_with_its_other_tables(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_cell(a, cell(), [2, 4], level=10.0)
    winner = write_cell(b, cell(), [2, 4, 6], level=20.0, done=False)  # resumed elsewhere
    write_cell(a, cell(seed=1), [2, 4], level=30.0)  # only in a
    write_cell(b, cell(dataset=EXPERT), [2], level=40.0)  # only in b
    selection = select_cells([a, b])
    assert winner in selection.folders and len(selection.folders) == 3
    evals = selection.evals
    seed0 = evals[(evals["seed"] == 0) & (evals["dataset"] == RANDOM)]
    assert seed0["update"].tolist() == [2, 4, 6] and set(seed0["normalized_score"]) == {20.0}
    metrics = selection.table("metrics.csv")
    assert sorted(metrics["loss"].unique()) == [20.0, 30.0, 40.0] and selection.problems == []
    assert selection.meta[winner]["git"]["commit"] == "b"
    assert select_cells([b, a]).folders == selection.folders  # the order of folders is no tiebreak


def test_identical_copies_merge_and_a_finished_copy_is_preferred(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_cell(a, cell(), [2, 4], level=10.0, done=False)
    finished = write_cell(b, cell(), [2, 4], level=10.0)
    selection = select_cells([a, b])
    assert selection.folders == (finished,) and len(selection.evals) == 2


def test_finished_only_leaves_out_cells_still_training(tmp_path: Path) -> None:
    """A grid still running: the finished copy of a cell counts, not a partial one further on
    elsewhere, and a cell that only exists partially is left out."""
    a, b = tmp_path / "a", tmp_path / "b"
    finished = write_cell(a, cell(), [2, 4], level=10.0)
    write_cell(b, cell(), [2, 4, 6], level=20.0, done=False)
    write_cell(a, cell(seed=1), [2], level=30.0, done=False)
    selection = select_cells([a, b], finished_only=True)
    assert selection.folders == (finished,)
    assert len(select_cells([a, b]).folders) == 2  # without it, both cells, the furthest copy
    out = tmp_path / "report"
    argv = ["--results", str(a), str(b), "--out", str(out), "--finished-only"]
    # EXIT_SKIPPED: write_cell's metrics tables lack the key columns (noted, as for any run).
    assert report.main(argv) == report.EXIT_SKIPPED
    board = pd.read_csv(out / "leaderboard.csv")
    assert set(board["runs"]) == {1} and set(board["final_mean"]) == {10.0}


def test_same_updates_with_different_numbers_is_an_error_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_cell(a, cell(), [2, 4], level=10.0)
    write_cell(b, cell(), [2, 4], level=11.0)
    with pytest.raises(MergeConflict, match="both reach update 4"):
        select_cells([a, b])
    out = tmp_path / "out"
    assert report.main(["--results", str(a), str(b), "--out", str(out)]) == report.EXIT_USAGE
    error = capsys.readouterr().err
    assert (
        str(a / "runs" / "demo" / "bc-pixels") in error
        and str(b / "runs" / "demo" / "bc-pixels") in error
    )
    assert not out.exists()  # nothing written from conflicting copies


def test_a_missing_results_folder_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_cell(tmp_path / "a", cell(), [2], level=1.0)
    argv = ["--results", str(tmp_path / "a"), str(tmp_path / "typo")]
    assert report.main(argv) == report.EXIT_USAGE
    assert f"no such results folder: {tmp_path / 'typo'}" in capsys.readouterr().err


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-3])  # cut inside the last row


def wrong_columns(path: Path) -> None:
    path.write_text(path.read_text().replace("normalized_score", "score"))


def garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 4)


def empty(path: Path) -> None:
    path.write_bytes(b"")


def non_numeric(path: Path) -> None:
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace(",2,0,", ",two,0,")  # the update column
    path.write_text("\n".join(lines) + "\n")


def other_cell(path: Path) -> None:
    path.write_text(path.read_text().replace(RANDOM, EXPERT))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (truncate, "truncated"),
        (wrong_columns, "missing columns ['normalized_score']"),
        (garbage, "cannot read"),
        (empty, "truncated"),
        (non_numeric, "not a valid table"),
        (other_cell, "not of its folder's cell"),
    ],
)
def test_damaged_tables_are_named_and_skipped(tmp_path: Path, damage, reason: str) -> None:
    folder = write_cell(tmp_path, cell(), [2, 4], level=10.0)
    write_cell(tmp_path, cell(seed=1), [2, 4], level=12.0)
    damage(folder / "evals.csv")
    selection = select_cells(tmp_path)
    assert [problem.path for problem in selection.problems] == [folder / "evals.csv"]
    assert reason in str(selection.problems[0])
    assert selection.evals["seed"].unique().tolist() == [1]
    with pytest.raises(TableError, match=re.escape(reason)):
        load_results(tmp_path)  # the strict reader refuses instead


def test_a_damaged_per_cell_table_is_noted_with_the_others(tmp_path: Path) -> None:
    folder = write_cell(tmp_path, cell(), [2, 4], level=10.0)
    write_cell(tmp_path, cell(seed=1), [2, 4], level=12.0)
    truncate(folder / "metrics.csv")
    selection = select_cells(tmp_path)
    assert selection.table("metrics.csv", {"update": "int64", "loss": "float64"})[
        "loss"
    ].tolist() == [12.0, 12.0]
    assert [problem.path for problem in selection.problems] == [folder / "metrics.csv"]
    assert len(selection.table("metrics.csv", profile="full")) == 0  # no cell of that profile


def test_report_skips_a_corrupt_cell_writes_the_rest_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    for seed in range(3):
        write_cell(results, cell(seed=seed), [2, 4], level=10.0 + seed)
    corrupt = CellPaths.of(results, cell(seed=1)).evals
    truncate(corrupt)
    (corrupt.parent / "meta.json").write_text('{"setup": ')  # and its metadata
    out = tmp_path / "out"
    assert report.main(["--results", str(results), "--out", str(out)]) == report.EXIT_SKIPPED
    error = capsys.readouterr().err
    assert f"{corrupt}: truncated" in error
    board = pd.read_csv(out / "leaderboard.csv")
    row = board[board["dataset"] == RANDOM].iloc[0]
    assert row["runs"] == 2 and row["final_mean"] == pytest.approx(11.0)  # seeds 0 and 2
    assert (out / "leaderboard.md").is_file()


def test_export_of_a_real_run_reports_like_the_original(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    argv = [
        "--profile",
        "smoke",
        "--algos",
        "bc-pixels",
        "--results",
        str(results),
        "--device",
        "cpu",
    ]
    assert run.main([*argv, "--workers", "1"]) == 0
    folder = next((results / "runs").rglob("checkpoint.pt")).parent
    (folder / "replay").mkdir()  # a chunk folder such as online cells keep
    (folder / "replay" / "chunk-0.npz").write_bytes(b"frames")
    archive = tmp_path / "returned" / "results.tar.gz"
    assert export_results.main(["--results", str(results), "--out", str(archive)]) == 0
    with tarfile.open(archive) as opened:
        names = {Path(name).name for name in opened.getnames()}
        assert names == {"evals.csv", "metrics.csv", "meta.json", "done"}
        opened.extractall(tmp_path / "unpacked", filter="data")
    assert sorted(p.name for p in archive.parent.iterdir()) == ["results.tar.gz"]  # no temporary

    unpacked = tmp_path / "unpacked"
    assert read_evals(unpacked / folder.relative_to(results) / "evals.csv").equals(
        read_evals(folder / "evals.csv")
    )
    for source, out in ((results, tmp_path / "r1"), (unpacked, tmp_path / "r2")):
        assert report.main(["--results", str(source), "--out", str(out)]) == 0
    original, exported = (
        pd.read_csv(p / "leaderboard.csv") for p in (tmp_path / "r1", tmp_path / "r2")
    )
    pd.testing.assert_frame_equal(original, exported)
    merged = select_cells([results, unpacked])  # identical copies of the cell
    assert merged.folders == (folder,)  # the first finished one, whose checkpoint is at hand
    capsys.readouterr()


def test_export_refuses_a_folder_without_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.tar.gz"
    assert export_results.main(["--results", str(tmp_path), "--out", str(out)]) == 2
    assert "has no runs/" in capsys.readouterr().err and not out.exists()


def test_export_keeps_finished_cells_of_the_named_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lanes' folder holds paused cells and other tables' cells; a committed reference keeps
    only the finished cells of its baselines."""
    results = tmp_path / "lanes"
    write_cell(results, cell("bc-state", seed=0), [2, 4], level=10.0)
    write_cell(results, cell("bc-state", seed=1), [2], level=10.0, done=False)  # paused
    write_cell(results, cell("bc-corl-ref", seed=0), [2, 4], level=10.0)  # another table's

    def exported(*flags: str) -> set[str]:
        archive = tmp_path / "out.tar.gz"
        assert export_results.main(["--results", str(results), "--out", str(archive), *flags]) == 0
        with tarfile.open(archive) as opened:
            return {str(Path(name).parent.relative_to("runs/demo")) for name in opened.getnames()}

    key = RANDOM.replace("/", "--")
    assert exported() == {f"bc-state/{key}/seed-0", f"bc-state/{key}/seed-1",
                          f"bc-corl-ref/{key}/seed-0"}  # fmt: skip
    assert exported("--finished-only") == {f"bc-state/{key}/seed-0", f"bc-corl-ref/{key}/seed-0"}
    assert exported("--finished-only", "--algos", "bc-state") == {f"bc-state/{key}/seed-0"}

    argv = ["--results", str(results), "--out", str(tmp_path / "x.tar.gz")]
    assert export_results.main([*argv, "--algos", "bc-stat"]) == 2
    error = capsys.readouterr().err
    assert "--algos bc-stat: no cells of that baseline" in error
    assert "present: bc-corl-ref, bc-state" in error
    write_cell(tmp_path / "paused", cell("bc-state"), [2], level=10.0, done=False)
    paused = ["--results", str(tmp_path / "paused"), "--out", str(tmp_path / "y.tar.gz")]
    assert export_results.main([*paused, "--finished-only"]) == 2
    assert "no finished cell files under" in capsys.readouterr().err
    assert not (tmp_path / "x.tar.gz").exists() and not (tmp_path / "y.tar.gz").exists()
