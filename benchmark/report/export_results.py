"""``python -m benchmark.export_results``: a results folder's tables and metadata as one .tar.gz.

For jobs that can hand back only a few small files. The archive keeps, of every cell folder
``runs/<profile>/<algo>/<dataset key>/seed-<n>/``, its tables (``*.csv``: evals, metrics, ...),
its metadata (``*.json``: meta, failed) and its ``done`` marker; checkpoints, replay chunk
folders and temporary files stay behind. Paths inside are relative to the results folder, so

    tar -xzf results.tar.gz -C machine-a/
    python -m benchmark.report --results machine-a machine-b

reads the unpacked export as a results folder. The archive is written atomically (a temporary
file renamed into place), so a job killed mid-export leaves no half archive. ``--finished-only``
keeps only cells with a ``done`` marker and ``--algos`` only the named baselines' cells: a
committed reference holds finished cells of its baselines only, while the lanes' folder also holds
cells paused by a time budget and cells of other tables.

The report and ``compare`` also read an export where it lies (:func:`results_roots`): a folder
holding export archives (``results/reference-state/results.tar.gz``) is read without unpacking
it by hand.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm import tqdm

from benchmark.atomic import atomic_write
from benchmark.harness.results import CELL_GLOB

KEPT_SUFFIXES = (".csv", ".json")
KEPT_NAMES = ("done",)


@dataclass(frozen=True)
class Export:
    """What an export holds: files relative to the results folder, and their cells."""

    files: tuple[Path, ...]
    cells: int


@dataclass(frozen=True)
class CellFilter:
    """Which cells an export keeps: all by default."""

    finished_only: bool = False
    algos: tuple[str, ...] = ()  # empty: every baseline's cells

    def keeps(self, folder: Path) -> bool:
        """``folder`` is ``runs/<profile>/<algo>/<dataset key>/seed-<n>``."""
        if self.finished_only and not (folder / "done").is_file():
            return False
        return not self.algos or folder.parent.parent.name in self.algos


def exported_files(root: str | Path, cells_kept: CellFilter = CellFilter()) -> Export:
    """The files of ``root`` an export keeps (plain files directly in a cell folder kept by
    ``cells_kept``). Raises ValueError for a name in ``cells_kept.algos`` with no cell under
    ``root``, naming the baselines present."""
    root = Path(root)
    folders = sorted(root.glob(CELL_GLOB))
    present = sorted({folder.parent.parent.name for folder in folders})
    unknown = [algo for algo in cells_kept.algos if algo not in present]
    if unknown:
        raise ValueError(
            f"--algos {' '.join(unknown)}: no cells of that baseline under {root / 'runs'}; "
            f"present: {', '.join(present) or 'none'}"
        )
    files, cells = [], 0
    for folder in filter(cells_kept.keeps, folders):
        kept = [path for path in sorted(folder.iterdir()) if _kept(path)]
        cells += bool(kept)
        files += [path.relative_to(root) for path in kept]
    return Export(tuple(files), cells)


def _kept(path: Path) -> bool:
    if path.name.startswith(".") or not path.is_file() or path.is_symlink():
        return False  # temporary files and locks; sub-folders (replay chunks); links
    return path.suffix in KEPT_SUFFIXES or path.name in KEPT_NAMES


def export(root: str | Path, out: str | Path, cells_kept: CellFilter = CellFilter()) -> Export:
    """Write ``out`` (a .tar.gz) holding the kept files of ``root``; returns what it holds."""
    root = Path(root)
    if not (root / "runs").is_dir():
        raise ValueError(f"{root} is not a results folder of benchmark.run (it has no runs/)")
    content = exported_files(root, cells_kept)
    if not content.files:
        what = " finished" if cells_kept.finished_only else ""
        raise ValueError(f"no{what} cell files under {root / 'runs'}")

    def write(file: IO[bytes]) -> None:
        with tarfile.open(fileobj=file, mode="w:gz") as archive:
            for relative in tqdm(content.files, desc="export", unit="file"):
                archive.add(root / relative, arcname=relative.as_posix(), recursive=False)

    atomic_write(out, write)
    return content


# -- reading exports in place -----------------------------------------------------------------
ARCHIVE_GLOB = "*.tar.gz"
_unpacked: dict[Path, Path] = {}  # archive -> its unpacked copy, for this process's lifetime


def is_export(archive: Path) -> bool:
    """An export of this module: a gzipped tar whose members all lie under ``runs/``."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            names = tar.getnames()
    except (tarfile.TarError, OSError):
        return False
    return bool(names) and all(name.startswith("runs/") for name in names)


def unpacked(archive: Path) -> Path:
    """``archive`` unpacked into a temporary folder (removed when the process exits), once per
    process; the folder is a results folder (it holds ``runs/``)."""
    archive = archive.resolve()
    if archive not in _unpacked:
        folder = Path(tempfile.mkdtemp(prefix="vorb-export-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(folder, filter="data")  # no links out, no absolute paths
        _unpacked[archive] = folder
    return _unpacked[archive]


def results_roots(folder: str | Path) -> list[Path]:
    """The results folders ``folder`` stands for: itself when it holds ``runs/``, and each export
    archive directly in it, unpacked (a committed reference keeps its cells as an archive).

    Raises ValueError when it holds neither, naming what was looked for.
    """
    folder = Path(folder)
    archives = [path for path in sorted(folder.glob(ARCHIVE_GLOB)) if is_export(path)]
    roots = ([folder] if (folder / "runs").is_dir() else []) + [unpacked(a) for a in archives]
    if not roots:
        raise ValueError(
            f"{folder} holds no results: no runs/ folder (python -m benchmark.run --results) and "
            f"no export archive ({ARCHIVE_GLOB} of python -m benchmark.export_results)"
        )
    return roots


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.export_results", description=__doc__)
    parser.add_argument("--results", default="runs", help="results folder of benchmark.run")
    parser.add_argument("--out", required=True, help="the archive to write, e.g. results.tar.gz")
    parser.add_argument(
        "--finished-only",
        action="store_true",
        help="only cells that finished (a 'done' marker), as a committed reference holds",
    )
    parser.add_argument(
        "--algos", nargs="+", default=(), metavar="ALGO", help="only these baselines' cells"
    )
    args = parser.parse_args(argv)
    try:
        content = export(args.results, args.out, CellFilter(args.finished_only, tuple(args.algos)))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    size = Path(args.out).stat().st_size
    print(f"written: {args.out} ({len(content.files)} files of {content.cells} cells, {size:,} B)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
