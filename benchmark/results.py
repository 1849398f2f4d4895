"""The results store: one tidy table of evaluations, written per cell, read as one.

Format: CSV. Each cell's table is a few dozen rows, so a columnar format buys nothing; CSV is
readable by eye and by pandas with no optional dependency, and diffs cleanly when reference
results are committed. Column types are fixed in :data:`COLUMNS` so every reader agrees.

Layout, one folder per cell so that parallel workers never write the same file::

    <root>/runs/<profile>/<algo>/<dataset key>/seed-<n>/
        evals.csv       the rows so far (rewritten whole, atomically, at every evaluation)
        metrics.csv     training metrics averaged over the updates between two evaluations
        meta.json       config, profile, protocol, references, versions, commit, host, device
        checkpoint.pt   trainer state + the rows it has seen (the truth on resume)
        done            written last: the cell is finished
        failed.json     the error of the last attempt, if it failed

Every write goes to a temporary file in the same folder and is renamed over the target
(``os.replace`` is atomic on POSIX), so a killed process leaves the old file or the new one,
never half of either.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.atomic import atomic_write_text

ONLINE = "online"  # the dataset column of online cells: they run once per seed, not per dataset

COLUMNS: dict[str, str] = {
    "algo": "string",
    "dataset": "string",
    "seed": "int64",
    "profile": "string",
    "update": "int64",
    "env_steps": "int64",
    "return_mean": "float64",
    "return_std": "float64",
    "normalized_score": "float64",
    "seconds": "float64",
    "q_estimate": "float64",
    "discounted_return": "float64",
}
# The cell's key columns, first in every per-cell table (evaluations and training metrics).
KEY_COLUMNS = ("algo", "dataset", "seed", "profile", "update")
PACKAGES = ("torch", "numpy", "gymnasium", "minari", "dm_control", "mujoco", "pandas", "ray")


@dataclass(frozen=True)
class EvalRow:
    """One evaluation of one cell: a row of the results table (see :data:`COLUMNS`).

    normalized_score is 100 x the Minari normalised score of ``return_mean`` (NaN when no
    reference scores exist); seconds is training wall-clock since the cell started, summed
    over resumed attempts. q_estimate is the critic's Q(s0, pi(s0)) at each evaluation
    episode's start state and discounted_return what the episode then obtained from it
    (discount 0.99), both averaged over the episodes; q_estimate is NaN without a critic.
    """

    algo: str
    dataset: str
    seed: int
    profile: str
    update: int
    env_steps: int
    return_mean: float
    return_std: float
    normalized_score: float
    seconds: float
    q_estimate: float = float("nan")
    discounted_return: float = float("nan")


assert [f.name for f in fields(EvalRow)] == list(COLUMNS)  # one schema, two spellings


@dataclass(frozen=True)
class Cell:
    """One unit of work: a baseline trained on one dataset (or online) with one seed."""

    algo: str
    dataset: str  # a recipe id, or ONLINE
    seed: int
    profile: str

    @property
    def label(self) -> str:
        return f"{self.algo} | {self.dataset} | seed {self.seed}"


def dataset_key(dataset: str) -> str:
    """A dataset id as one folder name (``vorb/walker-walk/expert-v0`` -> ``vorb--walker-walk--...``)."""
    return dataset.replace("/", "--")


@dataclass(frozen=True)
class CellPaths:
    """Where one cell's files live."""

    folder: Path

    @classmethod
    def of(cls, root: str | Path, cell: Cell) -> CellPaths:
        return cls(
            Path(root)
            / "runs"
            / cell.profile
            / cell.algo
            / dataset_key(cell.dataset)
            / f"seed-{cell.seed}"
        )

    evals = property(lambda self: self.folder / "evals.csv")
    metrics = property(lambda self: self.folder / "metrics.csv")
    meta = property(lambda self: self.folder / "meta.json")
    checkpoint = property(lambda self: self.folder / "checkpoint.pt")
    done = property(lambda self: self.folder / "done")
    failed = property(lambda self: self.folder / "failed.json")


def write_json(path: Path, record: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")


def write_rows(path: Path, rows: Iterable[EvalRow]) -> None:
    """The cell's whole table, atomically (tens of rows: rewriting beats appending in place)."""
    atomic_write_text(path, rows_frame(rows).to_csv(index=False))


def rows_frame(rows: Iterable[EvalRow]) -> pd.DataFrame:
    frame = pd.DataFrame([asdict(row) for row in rows], columns=list(COLUMNS))
    return frame.astype(COLUMNS)


def write_metrics(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """The cell's training-metrics table, atomically: the key columns, then one column per
    metric (sorted; a metric a row lacks is empty)."""
    atomic_write_text(path, metrics_frame(rows).to_csv(index=False))


def metrics_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    rows = list(rows)
    names = sorted({name for row in rows for name in row} - set(KEY_COLUMNS))
    frame = pd.DataFrame(rows, columns=[*KEY_COLUMNS, *names])
    return frame.astype(
        {key: COLUMNS[key] for key in KEY_COLUMNS} | dict.fromkeys(names, "float64")
    )


def read_metrics(path: str | Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    return frame.astype({key: COLUMNS[key] for key in KEY_COLUMNS})


# -- reading -----------------------------------------------------------------------------------
def read_evals(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=COLUMNS)


def load_results(root: str | Path, profile: str | None = None) -> pd.DataFrame:
    """Every cell's rows under ``root`` as one table (sorted; an empty table if none)."""
    pattern = f"runs/{profile}/*/*/*/evals.csv" if profile else "runs/*/*/*/*/evals.csv"
    frames = [read_evals(path) for path in sorted(Path(root).glob(pattern))]
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS)).astype(COLUMNS)
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["profile", "algo", "dataset", "seed", "update"], ignore_index=True)


def load_metrics(root: str | Path, profile: str | None = None) -> pd.DataFrame:
    """Every cell's training metrics under ``root`` as one table (an empty table if none)."""
    pattern = f"runs/{profile}/*/*/*/metrics.csv" if profile else "runs/*/*/*/*/metrics.csv"
    frames = [read_metrics(path) for path in sorted(Path(root).glob(pattern))]
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return metrics_frame([])
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["profile", "algo", "dataset", "seed", "update"], ignore_index=True)


def load_meta(root: str | Path, profile: str | None = None) -> list[dict[str, Any]]:
    """Every cell's ``meta.json`` under ``root``."""
    pattern = f"runs/{profile}/*/*/*/meta.json" if profile else "runs/*/*/*/*/meta.json"
    return [json.loads(path.read_text()) for path in sorted(Path(root).glob(pattern))]


# -- provenance --------------------------------------------------------------------------------
def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> dict[str, Any]:
    """The checkout's commit and whether it had uncommitted changes (None outside git)."""
    repo = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def host_info() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }


def check_writable(root: str | Path) -> Path:
    """Fail early, with the path in the message, if results cannot be written under ``root``."""
    root = Path(root).resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(root / ".write-probe", "ok\n")
        (root / ".write-probe").unlink()
    except OSError as error:
        raise PermissionError(f"cannot write results under {root}: {error}") from error
    return root
