"""``python -m benchmark.export_results``: a results folder's tables and metadata as one .tar.gz.

For jobs that can hand back only a few small files. The archive keeps, of every cell folder
``runs/<profile>/<algo>/<dataset key>/seed-<n>/``, its tables (``*.csv``: evals, metrics, ...),
its metadata (``*.json``: meta, failed) and its ``done`` marker; checkpoints, replay chunk
folders and temporary files stay behind. Paths inside are relative to the results folder, so

    tar -xzf results.tar.gz -C machine-a/
    python -m benchmark.report --results machine-a machine-b

reads the unpacked export as a results folder. The archive is written atomically (a temporary
file renamed into place), so a job killed mid-export leaves no half archive.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
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


def exported_files(root: str | Path) -> Export:
    """The files of ``root`` an export keeps (plain files directly in a cell folder)."""
    root = Path(root)
    files, cells = [], 0
    for folder in sorted(root.glob(CELL_GLOB)):
        kept = [path for path in sorted(folder.iterdir()) if _kept(path)]
        cells += bool(kept)
        files += [path.relative_to(root) for path in kept]
    return Export(tuple(files), cells)


def _kept(path: Path) -> bool:
    if path.name.startswith(".") or not path.is_file() or path.is_symlink():
        return False  # temporary files and locks; sub-folders (replay chunks); links
    return path.suffix in KEPT_SUFFIXES or path.name in KEPT_NAMES


def export(root: str | Path, out: str | Path) -> Export:
    """Write ``out`` (a .tar.gz) holding the kept files of ``root``; returns what it holds."""
    root = Path(root)
    if not (root / "runs").is_dir():
        raise ValueError(f"{root} is not a results folder of benchmark.run (it has no runs/)")
    content = exported_files(root)
    if not content.files:
        raise ValueError(f"no cell files under {root / 'runs'}")

    def write(file: IO[bytes]) -> None:
        with tarfile.open(fileobj=file, mode="w:gz") as archive:
            for relative in tqdm(content.files, desc="export", unit="file"):
                archive.add(root / relative, arcname=relative.as_posix(), recursive=False)

    atomic_write(out, write)
    return content


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.export_results", description=__doc__)
    parser.add_argument("--results", default="runs", help="results folder of benchmark.run")
    parser.add_argument("--out", required=True, help="the archive to write, e.g. results.tar.gz")
    args = parser.parse_args(argv)
    try:
        content = export(args.results, args.out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    size = Path(args.out).stat().st_size
    print(f"written: {args.out} ({len(content.files)} files of {content.cells} cells, {size:,} B)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
