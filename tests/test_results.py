"""The results store: schema, per-cell files, concatenation, atomic writes, unwritable folders."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmark.atomic import atomic_write, atomic_write_text
from benchmark.harness.results import (
    COLUMNS,
    Cell,
    CellPaths,
    EvalRow,
    check_writable,
    cpu_model,
    load_results,
    read_evals,
    write_rows,
)


def row(algo: str, dataset: str, seed: int, update: int, score: float) -> EvalRow:
    return EvalRow(algo, dataset, seed, "smoke", update, 0, score * 10, 1.0, score, 0.5)


def test_rows_round_trip_with_fixed_types(tmp_path: Path) -> None:
    path = tmp_path / "evals.csv"
    write_rows(
        path, [row("bc-pixels", "vorb/walker-walk/random-v0", 0, 2, 1.5), row("bc-pixels", "d", 0, 4, math.nan)]
    )
    table = read_evals(path)
    assert list(table.columns) == list(COLUMNS)
    assert table["update"].tolist() == [2, 4]
    assert table.loc[0, "dataset"] == "vorb/walker-walk/random-v0"
    assert math.isnan(table.loc[1, "normalized_score"])


def test_empty_table_has_the_columns(tmp_path: Path) -> None:
    write_rows(tmp_path / "evals.csv", [])
    assert list(read_evals(tmp_path / "evals.csv").columns) == list(COLUMNS)
    assert load_results(tmp_path / "nothing-here").empty


def test_cells_get_their_own_folders_and_concatenate(tmp_path: Path) -> None:
    cells = [Cell("bc-pixels", "vorb/walker-walk/random-v0", seed, "smoke") for seed in (1, 0)]
    cells.append(Cell("sac-curl-online", "online", 0, "smoke"))
    for cell in cells:
        paths = CellPaths.of(tmp_path, cell)
        write_rows(paths.evals, [row(cell.algo, cell.dataset, cell.seed, u, u) for u in (2, 4)])
    folders = {CellPaths.of(tmp_path, cell).folder for cell in cells}
    assert len(folders) == 3
    assert all("/" not in folder.parent.name for folder in folders)  # dataset ids flattened
    table = load_results(tmp_path)
    assert len(table) == 6
    assert table[["algo", "seed"]].drop_duplicates().values.tolist() == [
        ["bc-pixels", 0],
        ["bc-pixels", 1],
        ["sac-curl-online", 0],
    ]
    assert load_results(tmp_path, profile="demo").empty


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "cell" / "meta.json"
    atomic_write_text(path, "old\n")

    def explode(file: object) -> None:
        file.write(b"half of the new")  # type: ignore[attr-defined]
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(path, explode)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["meta.json"]


def test_unwritable_results_folder_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(PermissionError, match="a-file"):
        check_writable(blocker / "results")
    assert check_writable(tmp_path / "fine") == (tmp_path / "fine").resolve()


def test_atomic_write_gives_ordinary_permissions(tmp_path: Path) -> None:
    import os
    import stat

    path = tmp_path / "card.md"
    atomic_write_text(path, "hello\n")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0600


def test_cpu_model_is_read_from_cpuinfo_with_a_fallback() -> None:
    cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 9B14\nflags\t\t: fpu avx2\n"
    assert cpu_model(cpuinfo) == "AMD EPYC 9B14"
    assert cpu_model("processor\t: 0\n")  # no model line (aarch64): platform's answer
