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

import fcntl
import io
import json
import os
import platform
import socket
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.atomic import atomic_write_text
from benchmark.harness.precision import cpu_flags

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
    "observation": "string",
}
# The cell's key columns, first in every per-cell table (evaluations and training metrics).
KEY_COLUMNS = ("algo", "dataset", "seed", "profile", "update")
METRICS_KEY_DTYPES = {key: COLUMNS[key] for key in KEY_COLUMNS}
# Columns added after results were first written: older tables read with these defaults
# (results before the state track were all on pixels).
OPTIONAL_COLUMNS = {
    "q_estimate": float("nan"),
    "discounted_return": float("nan"),
    "observation": "pixels",
}
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
    observation: str = "pixels"  # the baseline's obs_kind: "pixels" or "state"


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


@dataclass(frozen=True)
class CellProgress:
    """How far one cell of a results folder has got, read from its small files (no checkpoint
    is loaded): what ``run --plan`` shows of a folder that lanes resume session after session.
    ``updates`` is the paused checkpoint's update, else the last evaluation's (a cell
    checkpoints at every evaluation, so an interrupted one resumes from at least there)."""

    state: str  # new, running, paused, interrupted, failed, finished
    updates: int = 0
    error: str = ""  # a failed cell's whole message (its failed.json); one line in describe()

    def describe(self) -> str:
        first_line = self.error.partition("\n")[0]
        return {
            "new": "not started",
            "running": f"running now (evaluated to update {self.updates:,})",
            "paused": f"paused at update {self.updates:,} (the same command resumes it)",
            "interrupted": f"stopped after update {self.updates:,}'s evaluation (resumes there)",
            "failed": f"failed: {first_line} (a rerun retries it)",
            "finished": "finished",
        }[self.state]


def cell_progress(root: str | Path, cell: Cell) -> CellProgress:
    """The progress of ``cell`` in the results folder ``root``."""
    paths = CellPaths.of(root, cell)
    if paths.done.exists():
        return CellProgress("finished", last_evaluated_update(paths))
    if paths.failed.exists():
        error = json.loads(paths.failed.read_text()).get("error", "?")
        return CellProgress("failed", last_evaluated_update(paths), error)
    if not paths.meta.exists():
        return CellProgress("new")
    meta = json.loads(paths.meta.read_text())
    if meta.get("status") == "paused":
        return CellProgress("paused", checkpointed_update(meta))
    state = "running" if lock_held(paths) else "interrupted"
    return CellProgress(state, last_evaluated_update(paths))


def checkpointed_update(meta: dict[str, Any]) -> int:
    """The update a paused cell's checkpoint holds, from its ``meta.json`` (0: none)."""
    return int(meta.get("checkpoint_update", 0))


def last_evaluated_update(paths: CellPaths) -> int:
    rows = read_evals(paths.evals) if paths.evals.exists() else None
    return 0 if rows is None or rows.empty else int(rows["update"].max())


def lock_held(paths: CellPaths) -> bool:
    """Another process holds the cell's lock (the runner's ``cell_lock``): it is training."""
    lock = paths.folder / ".lock"
    if not lock.exists():
        return False
    with open(lock) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


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
    return frame.astype(METRICS_KEY_DTYPES | dict.fromkeys(names, "float64"))


def read_metrics(path: str | Path) -> pd.DataFrame:
    """One cell's metrics table, checked like every table (:func:`read_table`)."""
    return read_table(path, METRICS_KEY_DTYPES)


# -- reading -----------------------------------------------------------------------------------
# Results may come from several machines: each job writes its own results folder (or an export of
# one, see benchmark.report.export_results) and the report reads them together. A cell may appear in more
# than one folder (a job resumed elsewhere, a copy of a copy): ``select_cells`` picks one folder
# per cell, and every per-cell table (evals.csv, metrics.csv, ...) is read from that folder, so a
# cell's tables always come from the same run.
CELL_GLOB = "runs/*/*/*/seed-*"


class TableError(ValueError):
    """A per-cell table that cannot be read; the message names the file."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class MergeConflict(ValueError):
    """One cell in two results folders, evaluated up to the same update with different numbers."""


def read_table(path: str | Path, dtypes: dict[str, str] | None = None) -> pd.DataFrame:
    """A CSV table, checked: complete (a file cut short loses its final newline; pandas would read
    the cut row silently), parseable, and with every column of ``dtypes`` in its type.

    Raises :class:`TableError` naming the file.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise TableError(path, f"cannot read: {error}") from error
    if not text.endswith("\n"):
        raise TableError(path, "truncated (the last line has no newline)")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=dtypes)
    except ValueError as error:  # pandas' parser errors and failed type conversions
        raise TableError(path, f"not a valid table: {error}") from error
    missing = [column for column in dtypes or () if column not in frame.columns]
    if missing:
        raise TableError(path, f"missing columns {missing}; expected {list(dtypes or ())}")
    return frame


def read_evals(path: str | Path) -> pd.DataFrame:
    """A cell's evals.csv; tables written before a column existed get its default
    (:data:`OPTIONAL_COLUMNS`)."""
    path = Path(path)
    required = {k: v for k, v in COLUMNS.items() if k not in OPTIONAL_COLUMNS}
    frame = read_table(path, required)
    for column, default in OPTIONAL_COLUMNS.items():
        if column not in frame.columns:
            frame[column] = default
    return frame[list(COLUMNS)].astype(COLUMNS)


def _cell_identity(folder: Path) -> tuple[str, str, str, int]:
    """(profile, algo, dataset key, seed) of a cell folder ``runs/<profile>/<algo>/<key>/seed-<n>``."""
    profile, algo, key, seed = folder.parts[-4:]
    if not seed.removeprefix("seed-").isdigit():
        raise TableError(folder, "not a cell folder (runs/<profile>/<algo>/<dataset>/seed-<n>)")
    return profile, algo, key, int(seed.removeprefix("seed-"))


def read_cell_evals(folder: Path) -> pd.DataFrame:
    """A cell's evals.csv, checked against its folder: rows of another cell are an error."""
    path = folder / "evals.csv"
    expected = _cell_identity(folder)
    table = read_evals(path)
    for found in table[["profile", "algo", "dataset", "seed"]].drop_duplicates().itertuples(False):
        if (found[0], found[1], dataset_key(str(found[2])), found[3]) != expected:
            raise TableError(path, f"holds rows of {tuple(found)}, not of its folder's cell")
    return table


@dataclass(frozen=True)
class Selection:
    """The cells found under one or more results folders: one chosen folder per cell.

    ``folders`` and ``evals`` are in cell order; ``meta`` maps a folder to its ``meta.json``;
    ``problems`` lists the files that could not be read, so far (an unreadable evals.csv leaves
    its candidate out, though the cell may still come from another folder; :meth:`table` adds
    the per-cell tables it could not read).
    """

    folders: tuple[Path, ...]
    evals: pd.DataFrame
    meta: dict[Path, dict[str, Any]]
    problems: list[TableError]

    def folders_of(self, profile: str | None) -> tuple[Path, ...]:
        """The chosen folders of one profile (all of them for None)."""
        return tuple(
            folder
            for folder in self.folders
            if profile is None or _cell_identity(folder)[0] == profile
        )

    def table(
        self, name: str, dtypes: dict[str, str] | None = None, profile: str | None = None
    ) -> pd.DataFrame:
        """The per-cell table ``name`` (e.g. ``metrics.csv``) of the chosen folders, as one."""
        table, problems = read_cell_tables(self.folders_of(profile), name, dtypes)
        self.problems.extend(problems)
        return table


@dataclass(frozen=True)
class _Candidate:
    folder: Path
    evals: pd.DataFrame

    @property
    def last_update(self) -> int:
        return int(self.evals["update"].max()) if len(self.evals) else -1


def _candidates(
    roots: Sequence[Path], profile: str | None, finished_only: bool = False
) -> tuple[dict, list[TableError]]:
    """Every readable cell folder (with ``finished_only``, those with a ``done`` marker),
    grouped by its path under its root."""
    pattern = CELL_GLOB.replace("runs/*", f"runs/{profile}", 1) if profile else CELL_GLOB
    by_cell: dict[tuple[str, ...], list[_Candidate]] = {}
    problems: list[TableError] = []
    for root in roots:
        for folder in sorted(Path(root).glob(pattern)):
            if not (folder / "evals.csv").is_file():
                continue  # failed before its first evaluation: nothing to report
            if finished_only and not (folder / "done").exists():
                continue  # still training (or stopped by a budget): its last score is not final
            try:
                evals = read_cell_evals(folder)
            except TableError as error:
                problems.append(error)
                continue
            key = folder.relative_to(root).parts
            by_cell.setdefault(key, []).append(_Candidate(folder, evals))
    return by_cell, problems


def _choose(candidates: list[_Candidate]) -> _Candidate:
    """The candidate with the most updates; equal ones must hold the same table."""
    last = max(candidate.last_update for candidate in candidates)
    best = [candidate for candidate in candidates if candidate.last_update == last]
    for other in best[1:]:
        if not best[0].evals.equals(other.evals):
            raise MergeConflict(
                f"{best[0].folder / 'evals.csv'} and {other.folder / 'evals.csv'} both reach "
                f"update {last} with different evaluations; keep one of the two folders"
            )
    finished = [candidate for candidate in best if (candidate.folder / "done").exists()]
    return (finished or best)[0]  # identical tables: prefer a finished cell's other files


def select_cells(
    roots: str | Path | Sequence[str | Path],
    profile: str | None = None,
    finished_only: bool = False,
) -> Selection:
    """One folder per cell across ``roots`` (results folders, each holding ``runs/``); with
    ``finished_only``, finished cells only (a grid still running reports what is final).

    A cell in several folders comes from the one evaluated furthest; a tie with different
    evaluations raises :class:`MergeConflict` (naming both files); identical copies are fine.
    Unreadable tables are skipped and listed in ``problems``.
    """
    roots = [Path(roots)] if isinstance(roots, str | Path) else [Path(r) for r in roots]
    by_cell, problems = _candidates(roots, profile, finished_only)
    conflicts, chosen = [], []
    for key in sorted(by_cell):
        try:
            chosen.append(_choose(by_cell[key]))
        except MergeConflict as error:
            conflicts.append(str(error))
    if conflicts:
        raise MergeConflict("\n".join(conflicts))
    frames = [candidate.evals for candidate in chosen if len(candidate.evals)]
    evals = pd.concat(frames, ignore_index=True) if frames else rows_frame([])
    evals = evals.sort_values(["profile", "algo", "dataset", "seed", "update"], ignore_index=True)
    folders = tuple(candidate.folder for candidate in chosen)
    meta, meta_problems = read_cell_meta(folders)
    return Selection(folders, evals, meta, [*problems, *meta_problems])


def read_cell_tables(
    folders: Iterable[Path], name: str, dtypes: dict[str, str] | None = None
) -> tuple[pd.DataFrame, list[TableError]]:
    """The table ``name`` (e.g. ``metrics.csv``) of each chosen cell folder, as one table.

    Cells without the file are left out (older results); unreadable ones are listed.
    """
    frames, problems = [], []
    for folder in folders:
        path = folder / name
        if not path.is_file():
            continue
        try:
            frames.append(read_table(path, dtypes))
        except TableError as error:
            problems.append(error)
    columns = list(dtypes or ())
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return table, problems


def read_cell_meta(folders: Iterable[Path]) -> tuple[dict[Path, dict[str, Any]], list[TableError]]:
    """The ``meta.json`` of each cell folder that has one, by folder; unreadable ones listed."""
    meta, problems = {}, []
    for folder in folders:
        path = folder / "meta.json"
        if not path.is_file():
            continue
        try:
            meta[folder] = json.loads(path.read_text())
        except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError too
            problems.append(TableError(path, f"cannot read: {error}"))
    return meta, problems


def load_results(
    roots: str | Path | Sequence[str | Path], profile: str | None = None
) -> pd.DataFrame:
    """Every cell's rows under ``roots`` as one table (sorted; an empty table if none).

    Strict: an unreadable table raises :class:`TableError` (the report uses
    :func:`select_cells` to skip it instead).
    """
    selection = select_cells(roots, profile)
    if selection.problems:
        raise selection.problems[0]
    return selection.evals


def load_metrics(
    roots: str | Path | Sequence[str | Path], profile: str | None = None
) -> pd.DataFrame:
    """Every chosen cell's training metrics (``metrics.csv``) under ``roots`` as one table,
    strict as :func:`load_results`; an empty table if no cell has one."""
    selection = select_cells(roots, profile)
    table = selection.table("metrics.csv", METRICS_KEY_DTYPES)
    if selection.problems:
        raise selection.problems[0]
    return sort_metrics(table)


def sort_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """Non-empty metrics tables in cell and update order (an empty one with the key columns)."""
    if table.empty:
        return metrics_frame([])
    return table.sort_values(["profile", "algo", "dataset", "seed", "update"], ignore_index=True)


# -- provenance --------------------------------------------------------------------------------
def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(repo: Path | None = None, tracked: Path | None = None) -> dict[str, Any]:
    """The commit of the checkout holding ``repo`` (default: this repository's) and whether it
    had uncommitted changes (None outside git). With ``tracked``, None unless git tracks that
    path there (a package installed into an ignored folder inside a checkout is not from it)."""
    repo = repo or Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    if tracked is not None and not git("ls-files", "--", str(tracked.resolve())):
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


# CPU features a result can depend on: bf16 kernels (``benchmark.harness.precision``) and
# NumPy's own AVX-512 exp, which moves walker's rewards in the last bits
# (``benchmark.datasets.store.REWARD_GRID``). Machines of one kind differ in them.
RESULT_CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.is_file() else ""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "model name":
            return value.strip()
    return platform.processor() or platform.machine()


def host_info() -> dict[str, Any]:
    flags = cpu_flags()
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_model(),
        "cpu_flags": None if flags is None else [f for f in RESULT_CPU_FLAGS if f in flags],
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
