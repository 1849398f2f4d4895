"""``python -m benchmark.lease.merge SLOT_OUT``: a GPU slot's results into ``results/reference/``.

``SLOT_OUT`` is the folder a slot handed back (``scripts/gpu_lease.sh --out``): its
``results.tar.gz`` (``benchmark.report.export_results``) is unpacked beside the reference folder, merged
with it by the report's own rule (a cell found in both comes from the copy evaluated furthest;
conflicting copies are an error and nothing is written), and the leaderboard and figures are
rebuilt. The slot's log, stage status, probe and speed files are kept beside the cells, in
``results/reference/slots/<slot id>/``, so every number can be traced to the command that made it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmark.harness.results import select_cells
from benchmark.report.leaderboard import write_report

ARCHIVE = "results.tar.gz"
SLOT_FILES = ("status.json", "lease.log", "probe.json", "speed.json")


def slot_id(slot: Path) -> str:
    """The slot's start time as the stage status recorded it (``YYYYmmdd-HHMMSS``)."""
    status = slot / "status.json"
    if status.is_file():
        return json.loads(status.read_text())["slot_id"]
    raise ValueError(f"{slot} is not a slot's output folder (no status.json)")


def merge(slot: str | Path, reference: str | Path) -> Path:
    """Merge ``slot``'s cells into ``reference``; returns the rebuilt leaderboard."""
    slot, reference = Path(slot), Path(reference)
    kept = reference / "slots" / slot_id(slot)
    with tempfile.TemporaryDirectory(
        dir=reference.parent if reference.parent.exists() else None
    ) as tmp:
        unpacked = Path(tmp) / "slot"
        if (slot / ARCHIVE).is_file():
            with tarfile.open(slot / ARCHIVE) as archive:
                archive.extractall(unpacked, filter="data")
        roots = [root for root in (reference, unpacked) if (root / "runs").is_dir()]
        if not roots:
            raise ValueError(f"no cells in {slot / ARCHIVE} nor in {reference}")
        selection = select_cells(roots)  # raises ValueError on conflicting copies
        for folder in selection.folders_of(None):
            if unpacked in folder.parents:
                target = reference / folder.relative_to(unpacked)
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(folder, target)
    kept.mkdir(parents=True, exist_ok=True)
    for name in SLOT_FILES:
        if (slot / name).is_file():
            shutil.copy2(slot / name, kept / name)
    return write_report(reference, reference)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.lease.merge", description=__doc__)
    parser.add_argument("slot", help="the folder a slot handed back (gpu_lease.sh --out)")
    parser.add_argument("--reference", default="results/reference")
    args = parser.parse_args(argv)
    try:
        board = merge(args.slot, args.reference)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(board.read_text())
    print(f"written: {board} and its figures; slot files in {args.reference}/slots/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
