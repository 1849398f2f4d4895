"""``--launcher slurm``: a run's cells as one SLURM job array, submitted through submitit.

Each array task runs one cell (or ``cells_per_task`` of them, in turn) with the same
:func:`benchmark.harness.runner.run_cell` every launcher calls, so resume, failure isolation
(``failed.json``) and the results files are the local launcher's.

Time: a task's budget is what its job has left (``SLURM_JOB_END_TIME`` where SLURM sets it,
else the requested time from the task's start) less ``margin_s``. At the budget, or at SLURM's
warning signal (``USR2``, ``signal_delay_s`` before the limit, or a preemption), its cells stop
at their next exact checkpoint and the task hands over to submitit's checkpoint protocol
(:meth:`ArrayTask.checkpoint`), which requeues the job; the requeued task resumes the cells
exactly. submitit counts the requeues after a time-out and stops at ``requeues``.

The job folder (submitit's pickles, each task's logs) is ``<results>/slurm/<array id>``; the
results folder, the datasets and the Python environment must be on a filesystem the nodes
share. submitit's ``local`` cluster runs the same pickled tasks as processes on this machine
(the tests use it). submitit is an optional extra: ``pip install -e '.[slurm]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmark.harness import precision, registry, runner
from benchmark.harness.cost import parse_duration
from benchmark.harness.results import Cell, CellPaths, cell_progress
from benchmark.progress import TICK_S, line

SUBMITIT = "submitit==1.5.4"  # the pinned extra: pyproject.toml [project.optional-dependencies]
CLUSTERS = ("slurm", "local")  # submitit's executors: a SLURM cluster, or processes here
JOBS_FOLDER = "slurm"  # under the results folder
SUBMISSIONS = "submissions.jsonl"  # in JOBS_FOLDER: one line per submitted task
POLL_S = 5.0  # how often a waiting launcher asks squeue (one call for the whole array)
# squeue's states of a task that has not ended (a requeued task waits as PENDING).
ACTIVE_STATES = frozenset(
    {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}
    | {"REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD", "PREEMPTED"}
)


# -- options -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SlurmOptions:
    """What each array task asks for, and how the launcher runs them.

    cluster: ``slurm`` (sbatch) or ``local`` (submitit's local executor: processes here, tests).
    partition, account, qos: sbatch's ``--partition``, ``--account``, ``--qos`` (None: the
        cluster's default).
    time_min: each task's time limit in minutes (sbatch ``--time``); a cell that needs longer
        is checkpointed and requeued.
    gpus, cpus, mem_gb: per task (``--gpus-per-node``, ``--cpus-per-task``, ``--mem``; mem None:
        the cluster's default). A task's cells use ``cpus`` torch threads.
    parallel: at most this many tasks of the array run at once (``--array=0-N%parallel``; None:
        as many as the cluster allows). The local cluster starts every task at once.
    requeues: requeues after a time-out, per task (submitit's ``max_num_timeout``); past them
        the task ends with its cells paused, and a rerun of the command resumes them.
    cells_per_task: cells one task runs in turn (short cells: fewer, longer jobs).
    margin_s: seconds kept back at the end of a task's time to reach an exact checkpoint and
        write it; None: a tenth of the time, 1 to 10 minutes (``--time-budget``'s reserve).
    signal_delay_s: SLURM sends its warning signal (USR2) this long before the time limit.
    setup: shell lines each job runs before Python (``module load ...``); SLURM only.
    """

    cluster: str = "slurm"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_min: int = 60
    gpus: int = 0
    cpus: int = 4
    mem_gb: float | None = None
    parallel: int | None = None
    requeues: int = 3
    cells_per_task: int = 1
    margin_s: float | None = None
    signal_delay_s: int = 90
    setup: tuple[str, ...] = ()

    def check(self) -> SlurmOptions:
        """Itself, or ValueError naming the bad value and what is valid."""
        if self.cluster not in CLUSTERS:
            raise ValueError(f"cluster {self.cluster!r} is not one of {', '.join(CLUSTERS)}")
        at_least = {"time_min": 1, "gpus": 0, "cpus": 1, "requeues": 0, "cells_per_task": 1}
        at_least |= {"parallel": 1, "signal_delay_s": 0}
        for name, low in at_least.items():
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < low):
                raise ValueError(f"{name}={value!r}: expected an integer >= {low}")
        if self.mem_gb is not None and not self.mem_gb > 0:
            raise ValueError(f"mem_gb={self.mem_gb!r}: expected a positive number of GB")
        if not 0 <= self.margin < self.time_min * 60:
            raise ValueError(
                f"margin_s={self.margin:g} (--slurm-margin): expected 0 <= margin < the time "
                f"limit ({self.time_min * 60} s), else the task stops before it starts"
            )
        return self

    @property
    def margin(self) -> float:
        if self.margin_s is not None:
            return float(self.margin_s)
        return min(max(0.1 * self.time_min * 60, 60.0), 600.0)

    def describe(self) -> str:
        """``partition gpu, 1 GPU, 8 CPUs, 32 GB, 240 min (...)`` for ``--plan`` and the log."""
        asks = [f"partition {self.partition}" if self.partition else "the default partition"]
        asks += [f"account {self.account}"] if self.account else []
        asks += [f"QoS {self.qos}"] if self.qos else []
        asks += [f"{self.gpus} GPU(s)"] if self.gpus else ["no GPU"]
        asks += [f"{self.cpus} CPU(s)"]
        asks += [f"{self.mem_gb:g} GB" if self.mem_gb else "the default memory"]
        asks += [f"{self.time_min} min"]
        return ", ".join(asks)

    def executor_parameters(self) -> dict[str, Any]:
        """submitit's ``AutoExecutor.update_parameters`` arguments (None: left unset)."""
        return {
            "name": "vorb",
            "timeout_min": self.time_min,
            "cpus_per_task": self.cpus,
            "gpus_per_node": self.gpus or None,
            "mem_gb": self.mem_gb,
            "slurm_partition": self.partition,
            "slurm_account": self.account,
            "slurm_qos": self.qos,
            "slurm_array_parallelism": self.parallel,
            "slurm_signal_delay_s": self.signal_delay_s,
            "slurm_setup": list(self.setup) or None,
            # Without it a cluster whose slurm.conf says JobRequeue=0 refuses the requeue.
            "slurm_additional_parameters": {"requeue": True},
        }


OPTION_FIELDS = tuple(f.name for f in dataclasses.fields(SlurmOptions))


def parse_minutes(text: str | int) -> int:
    """A SLURM time limit in whole minutes: ``90`` (minutes, as sbatch reads it), ``90m``,
    ``4h``, ``1d``, ``2:30:00`` (H:MM:SS) or ``1-12:00:00``; seconds round up."""
    if isinstance(text, int):
        return text
    return math.ceil(parse_duration(text, "--slurm-time", bare_unit_s=60) / 60)


def load_config(path: str | Path) -> dict[str, Any]:
    """A TOML file of :class:`SlurmOptions` fields (top level or under ``[slurm]``)."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"--slurm-config {path}: {error}") from None
    data = data.get("slurm", data)
    if "time" in data:  # the friendlier spelling, as on the command line
        data["time_min"] = data.pop("time")
    unknown = sorted(set(data) - set(OPTION_FIELDS))
    if unknown:
        raise ValueError(
            f"--slurm-config {path}: unknown key(s) {', '.join(unknown)}; valid: "
            f"{', '.join(OPTION_FIELDS)} (time as well as time_min)"
        )
    return data


def make_options(config: str | None, flags: dict[str, Any]) -> SlurmOptions:
    """The config file's values, then the flags that were given (None: not given)."""
    values = load_config(config) if config else {}
    values |= {name: value for name, value in flags.items() if value is not None}
    if "time_min" in values:
        values["time_min"] = parse_minutes(values["time_min"])
    if "setup" in values:
        values["setup"] = tuple(values["setup"])
    return SlurmOptions(**values).check()


# --slurm-<flag>: (the SlurmOptions field it sets, its type, metavar, help)
FLAGS: dict[str, tuple[str, type, str, str]] = {
    "partition": ("partition", str, "NAME", "partition (default: the cluster's)"),
    "account": ("account", str, "NAME", "account to charge"),
    "qos": ("qos", str, "NAME", "quality of service"),
    "time": (
        "time_min",
        str,
        "TIME",
        "each task's time limit: minutes as sbatch reads them (90), 90m, 4h or 2:30:00 "
        "(default 60); a cell that needs longer is checkpointed and requeued",
    ),
    "gpus": ("gpus", int, "N", "GPUs per task (default 0)"),
    "cpus": ("cpus", int, "N", "CPUs per task, also its torch threads (default 4)"),
    "mem": ("mem_gb", float, "GB", "memory per task in GB (default: the cluster's)"),
    "margin": (
        "margin_s",
        float,
        "SECONDS",
        "kept back at the end of a task's time to reach a checkpoint and write it "
        "(default: a tenth of the time, 60 to 600)",
    ),
    "parallel": ("parallel", int, "N", "at most N tasks of the array at once"),
    "requeues": ("requeues", int, "N", "requeues after a time-out, per task (default 3)"),
    "cells-per-task": (
        "cells_per_task",
        int,
        "N",
        "cells one task runs in turn (default 1: one task per cell)",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--slurm-*`` flags and ``--no-wait`` of ``python -m benchmark.run``."""
    group = parser.add_argument_group(
        "SLURM (--launcher slurm; flags override --slurm-config; needs pip install -e '.[slurm]')"
    )
    group.add_argument(
        "--slurm-config",
        metavar="FILE",
        help=f"a TOML file of the options below (keys: {', '.join(OPTION_FIELDS)})",
    )
    for flag, (_, kind, metavar, text) in FLAGS.items():
        group.add_argument(f"--slurm-{flag}", type=kind, metavar=metavar, help=text)
    group.add_argument(
        "--slurm-cluster",
        choices=CLUSTERS,
        help="slurm (default), or local: submitit's local "
        "executor, the same tasks as processes on this machine",
    )
    group.add_argument(
        "--no-wait",
        action="store_true",
        help="submit, print the job ids and return at once "
        "(watch with squeue, report with python -m benchmark.report at any time)",
    )


def options_from_args(args: argparse.Namespace) -> SlurmOptions:
    flags = {
        field: getattr(args, "slurm_" + flag.replace("-", "_"))
        for flag, (field, *_) in FLAGS.items()
    }
    return make_options(args.slurm_config, flags | {"cluster": args.slurm_cluster})


DEVICE_FORMS = "auto, cpu, cuda or cuda:N"


def check_device_name(name: str) -> str:
    """The device is resolved on the node (a login node may have no GPU): only its form here."""
    if name in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", name):
        return name
    raise ValueError(f"--device {name!r}: expected {DEVICE_FORMS} (resolved on each node)")


# -- the tasks ---------------------------------------------------------------------------------
def chunk(units: Sequence[Any], size: int) -> list[tuple[Any, ...]]:
    """Cells -> array tasks of ``size`` cells each."""
    return [tuple(units[i : i + size]) for i in range(0, len(units), size)]


def cells_of(units: Sequence[Any]) -> list[Cell]:
    return [task.cell for task in units]


class CellsFailed(RuntimeError):
    """Raised at the end of a task whose cells failed, so SLURM records the task as FAILED
    (each cell's ``failed.json`` says why)."""


@dataclass(frozen=True)
class ArrayTask:
    """What one array task runs: a callable submitit pickles, with submitit's checkpoint method.

    The cells' state lives in their checkpoints, so the task requeued is this same task.
    """

    units: tuple[runner.CellTask, ...]
    time_limit_s: float
    margin_s: float
    cpus: int

    def __call__(self) -> list[runner.CellOutcome]:
        stop_at = job_deadline(self.time_limit_s) - self.margin_s
        with stop_on_warning() as hand_over:
            outcomes = [o for unit in self.units for o in run_here(unit, stop_at, self.cpus)]
            if any(o.status == "paused" for o in outcomes):
                hand_over()  # requeues and exits; returns when the requeues are spent
        failed = [o for o in outcomes if o.status in ("failed", "busy")]
        if failed:
            raise CellsFailed("; ".join(f"{o.cell.label}: {o.error}" for o in failed))
        return outcomes

    def checkpoint(self) -> Any:
        """submitit's checkpoint protocol: called by its signal handler, returns what the
        requeued job runs. Every cell has just written an exact checkpoint: the same task."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self)


def run_here(task: runner.CellTask, stop_at: float, cpus: int) -> list[runner.CellOutcome]:
    """One cell on this node; a device or precision this node cannot give fails the cell
    (with ``failed.json``), as an error in a cell does."""
    try:
        task = on_this_node(task, stop_at, cpus)
    except Exception as error:
        paths = CellPaths.of(task.root, task.cell)
        paths.folder.mkdir(parents=True, exist_ok=True)
        return [runner.record_failure(task.cell, paths, error)]
    return [runner.outcome_of(lambda: runner.run_cell(task), task)]


def job_deadline(time_limit_s: float) -> float:
    """When SLURM ends this job: ``SLURM_JOB_END_TIME`` where SLURM sets it (22.05 does not),
    else the requested time from now (a task starts seconds after its job; the margin covers
    them). A requeued job starts with its whole time again."""
    end = os.environ.get("SLURM_JOB_END_TIME")
    if end and end.isdigit():
        return float(end)
    return runner.now() + time_limit_s


def on_this_node(task: runner.CellTask, stop_at: float, cpus: int) -> runner.CellTask:
    """The cell as this node runs it: its device and precision resolved here, the node's
    threads, the job's budget, plain log lines (no terminal)."""
    device = node_device(task.device)
    threads = min(cpus, runner.available_cores())
    budget = stop_at if task.stop_at is None else min(stop_at, task.stop_at)
    choice = task.precision or _node_precision(task, device, threads)
    return replace(
        task,
        device=device,
        threads=threads,
        stop_at=budget,
        precision=choice,
        progress=False,
        log_lines=True,
    )


def node_device(name: str) -> str:
    """``auto`` -> cuda if this node has it, else cpu; a CUDA device this node lacks fails the
    task's cells with the devices it has."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    index = int(name.partition(":")[2] or 0)
    if name.startswith("cuda") and index >= torch.cuda.device_count():
        raise RuntimeError(
            f"--device {name}: this node ({os.uname().nodename}) has "
            f"{torch.cuda.device_count()} CUDA device(s); ask for GPUs with --slurm-gpus"
        )
    return name


def _node_precision(task: runner.CellTask, device: str, threads: int) -> Any:
    """``auto`` precision, decided on the node; a cell begun before keeps the one it began in."""
    paths = CellPaths.of(task.root, task.cell)
    if paths.meta.exists():
        recorded = json.loads(paths.meta.read_text()).get("precision")
        if recorded:
            return precision.PrecisionChoice(**recorded)
    profile = task.overrides.profile_named(task.cell.profile)
    spec = task.spec or registry.get(task.cell.algo)
    return precision.resolve(profile.precision, device, [spec], threads)


def warning_signal() -> signal.Signals:
    """SLURM's warning signal as submitit asks for it (``SUBMITIT_PREEMPT_SIGNAL``, USR2)."""
    from submitit.core.job_environment import JobEnvironment

    return signal.Signals[f"SIG{JobEnvironment.USR_SIG}"]


@contextlib.contextmanager
def stop_on_warning() -> Iterator[Callable[[], None]]:
    """While the cells train, the warning signal stops them at their next exact checkpoint
    (instead of submitit's handler, which would exit mid-update). Yields ``hand_over``: call
    submitit's handler then, which checkpoints, requeues and exits."""
    signum = warning_signal()
    submitits = signal.getsignal(signum)

    def hand_over() -> None:
        from submitit.core.utils import UncompletedJobError

        if not callable(submitits):  # outside a submitit job (a direct call): nothing to requeue
            return
        line("[slurm] cells stopped at a checkpoint: requeueing the task")
        try:
            submitits(signum, None)  # checkpoint(), then requeue and exit
        except UncompletedJobError as error:  # the requeues are spent: end with cells paused
            line(f"[slurm] not requeued: {error}; the same command resumes the cells")

    signal.signal(signum, lambda *_: runner.request_stop())
    try:
        yield hand_over
    finally:
        signal.signal(signum, submitits)


# -- the launcher ------------------------------------------------------------------------------
def require_submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise RuntimeError(
            f"--launcher slurm needs submitit: pip install -e '.[slurm]' (or pip install "
            f"'{SUBMITIT}') in the environment the nodes use"
        ) from None
    return submitit


def describe_jobs(cells: Sequence[Cell], options: SlurmOptions, root: str | Path) -> str:
    """What ``--plan`` shows: the array, what each task asks for, and each task's cells."""
    finished = [c for c in cells if CellPaths.of(root, c).done.exists()]
    todo = [c for c in cells if c not in finished]
    tasks = chunk(todo, options.cells_per_task)
    lines = [
        f"SLURM ({options.cluster}): 1 job array of {len(tasks)} task(s)"
        + (f", at most {options.parallel} at once" if options.parallel else ""),
        f"  each task asks for: {options.describe()}",
        f"  budget: the job's time less {options.margin:g} s; then (or at SLURM's warning, "
        f"{options.signal_delay_s} s before the limit) its cells checkpoint and the task is "
        f"requeued, at most {options.requeues} time(s) after time-outs",
        f"  job folder: {Path(root).resolve() / JOBS_FOLDER}/<array id> (logs, pickles)",
    ]
    if finished:
        lines.append(f"  {len(finished)} cell(s) already finished: skipped, not submitted")
    for index, task in enumerate(tasks):
        lines += [f"  task {index}: {cell.label}" for cell in task]
    return "\n".join(lines)


def launch(
    tasks: Sequence[runner.CellTask],
    options: SlurmOptions,
    root: Path,
    on_outcome: Callable[[runner.CellOutcome], None],
    on_tick: Callable[[], None] = lambda: None,
    wait: bool = True,
) -> list[runner.CellOutcome]:
    """Submit the unfinished cells as one job array; with ``wait``, follow it to the end.

    Finished cells are skipped here (not submitted); cells still queued or running from an
    earlier submission are left to it (outcome ``busy``). Returns the outcomes known when it
    returns: without ``wait``, those of the cells it did not submit.
    """
    submitit = require_submitit()
    outcomes: list[runner.CellOutcome] = []
    todo = []
    active = earlier_active_cells(root, options)
    for task in tasks:
        if CellPaths.of(task.root, task.cell).done.exists():
            outcomes.append(runner.run_cell(task))  # skipped (or a setup conflict): no training
        elif task.cell in active:
            error = f"still queued or running as job {active[task.cell]}: not resubmitted"
            outcomes.append(runner.CellOutcome(task.cell, "busy", error=error))
        else:
            todo.append(task)
    for outcome in outcomes:
        on_outcome(outcome)
    if not todo:
        return outcomes
    array = [
        ArrayTask(units, options.time_min * 60.0, options.margin, options.cpus)
        for units in chunk(todo, options.cells_per_task)
    ]
    jobs = submit(submitit, array, options, root)
    if not wait:
        return outcomes
    return outcomes + follow(jobs, array, options, on_outcome, on_tick)


def submit(submitit: Any, array: list[ArrayTask], options: SlurmOptions, root: Path) -> list:
    """One job array (sbatch ``--array``) of the tasks; records which cells each job runs."""
    # The tasks unpickle benchmark.* objects: they must import the VORB this command runs,
    # wherever sbatch starts them (an editable install, a checkout, a wheel).
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([package_root, *paths]))
    executor = submitit.AutoExecutor(
        folder=root / JOBS_FOLDER / "%A",
        cluster=options.cluster,
        slurm_max_num_timeout=options.requeues,
        local_max_num_timeout=options.requeues,
    )
    parameters = options.executor_parameters()
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    jobs = executor.submit_array(array)
    record_submission(root, jobs, array, options)
    first = jobs[0].job_id.split("_")[0]
    line(
        f"[slurm] submitted {len(jobs)} task(s) as job {first} ({options.cluster}): "
        f"{options.describe()}; folder {jobs[0].paths.folder}"
    )
    for job, task in zip(jobs, array, strict=True):
        labels = "; ".join(cell.label for cell in cells_of(task.units))
        line(f"[slurm] {job.job_id}: {labels}")
    if options.cluster == "slurm":
        line(
            f"[slurm] watch: squeue -j {first}   cancel: scancel {first}   logs: "
            f"{jobs[0].paths.folder}/*_log.err"
        )
    return jobs


def record_submission(
    root: Path, jobs: Sequence[Any], array: Sequence[ArrayTask], options: SlurmOptions
) -> None:
    """``<results>/slurm/submissions.jsonl``: which job runs which cells (a rerun leaves the
    cells of jobs still queued or running to them)."""
    path = root / JOBS_FOLDER / SUBMISSIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        for job, task in zip(jobs, array, strict=True):
            record = {
                "job": job.job_id,
                "cluster": options.cluster,
                "submitted": time.time(),
                "cells": [dataclasses.asdict(cell) for cell in cells_of(task.units)],
            }
            handle.write(json.dumps(record) + "\n")


def earlier_active_cells(
    root: Path, options: SlurmOptions, settle_s: float = 60.0
) -> dict[Cell, str]:
    """Cells of earlier SLURM submissions to this results folder whose jobs are still queued
    or running (the local cluster's processes end with their command). Jobs just cancelled
    stay COMPLETING while SLURM kills them: waited for, up to ``settle_s``."""
    path = root / JOBS_FOLDER / SUBMISSIONS
    if options.cluster != "slurm" or not path.exists():
        return {}
    records = [json.loads(text) for text in path.read_text().splitlines() if text.strip()]
    records = [r for r in records if r.get("cluster") == "slurm"]
    arrays = sorted({r["job"].split("_")[0] for r in records})
    deadline = time.monotonic() + settle_s
    while (states := squeue_states(arrays)) is not None and time.monotonic() < deadline:
        if "COMPLETING" not in {states.get(r["job"]) for r in records}:
            break
        time.sleep(2)
    if states is None:  # squeue did not answer: assume nothing runs, as before this launcher
        return {}
    return {
        Cell(**cell): record["job"]
        for record in records
        if states.get(record["job"]) in ACTIVE_STATES
        for cell in record["cells"]
    }


def squeue_states(array_ids: Sequence[str]) -> dict[str, str] | None:
    """``{"123_4": "RUNNING", ...}`` for the tasks of these arrays that squeue still lists
    (jobs that ended drop out); None if squeue fails. sacct is not needed (no accounting
    database), unlike submitit's own watcher."""
    if not array_ids:
        return {}
    command = ["squeue", "-h", "--array", "-o", "%i|%T", "-j", ",".join(array_ids)]
    try:
        output = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    states = {}
    for text in output.stdout.splitlines():
        job_id, _, state = text.strip().partition("|")
        states[job_id] = state
    return states


def follow(
    jobs: Sequence[Any],
    array: Sequence[ArrayTask],
    options: SlurmOptions,
    on_outcome: Callable[[runner.CellOutcome], None],
    on_tick: Callable[[], None],
) -> list[runner.CellOutcome]:
    """Wait for every task: relay its cells' event lines, report its state changes, and turn
    each ended task into its cells' outcomes."""
    pending = {job.job_id: (job, task) for job, task in zip(jobs, array, strict=True)}
    logs, states, last_poll = LogRelay(), None, -math.inf
    outcomes: list[runner.CellOutcome] = []
    while pending:
        time.sleep(TICK_S)
        on_tick()
        logs.relay(job.paths.stderr for job, _ in pending.values())
        if options.cluster == "slurm" and time.monotonic() - last_poll >= POLL_S:
            last_poll = time.monotonic()
            seen = squeue_states(sorted({job_id.split("_")[0] for job_id in pending}))
            states = states if seen is None else report_state_changes(states or {}, seen)
        for job_id in [j for j in pending if task_ended(pending[j][0], options, states)]:
            job, task = pending.pop(job_id)
            logs.relay([job.paths.stderr])  # the task's last lines before its outcomes
            for outcome in task_outcomes(job, task):
                outcomes.append(outcome)
                on_outcome(outcome)
    return outcomes


def report_state_changes(before: dict[str, str], seen: dict[str, str]) -> dict[str, str]:
    """One line per task whose squeue state changed (``PENDING``, ``RUNNING``, ...)."""
    for job_id, state in sorted(seen.items()):
        if before.get(job_id) != state:
            line(f"[slurm] {job_id}: {state}")
    return seen


def task_ended(job: Any, options: SlurmOptions, states: dict[str, str] | None) -> bool:
    """Its result is written, or (SLURM) squeue no longer lists it: cancelled, killed, or
    ended without a result. A requeued task waits as PENDING: not ended. ``states`` None:
    squeue has not answered yet."""
    if job.paths.result_pickle.exists():
        return True
    if options.cluster == "local":
        return job.done()
    return states is not None and states.get(job.job_id) not in ACTIVE_STATES


def task_outcomes(job: Any, task: ArrayTask) -> list[runner.CellOutcome]:
    """The task's result; a task that raised (a failed cell) or ended without a result
    (cancelled, killed): its cells as the results folder has them."""
    with contextlib.suppress(Exception):  # no result, or an error: read the cells from disk
        if job.paths.result_pickle.exists():
            return list(job.result())
    why = f"job {job.job_id} ended before this cell did"
    return [cell_on_disk(t.root, t.cell, why) for t in task.units]


def cell_on_disk(root: str, cell: Cell, why: str) -> runner.CellOutcome:
    """A cell as its job left it, read as ``run --plan`` reads it (:func:`cell_progress`): done,
    failed (its ``failed.json``), or cut short by its job: not a failure of the cell (no
    ``failed.json``), and the same command resumes it from its last checkpoint."""
    progress = cell_progress(root, cell)
    if progress.state == "finished":
        return runner.finished_outcome(cell, CellPaths.of(root, cell), "done")
    if progress.state == "failed":
        return runner.CellOutcome(cell, "failed", error=progress.error)
    error = f"{why}: {progress.describe()}"
    return runner.CellOutcome(cell, "failed", updates=progress.updates, error=error)


class LogRelay:
    """Copies each task's ``[cell]`` event lines from its log to this command's stderr, once,
    so a waiting launcher shows one line per cell event as the local launcher does."""

    def __init__(self) -> None:
        self.offsets: dict[Path, int] = {}

    def relay(self, paths: Any) -> None:
        for path in paths:
            path = Path(path)
            if not path.exists():
                continue
            with path.open("rb") as handle:
                handle.seek(self.offsets.get(path, 0))
                data = handle.read()
            complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
            self.offsets[path] = self.offsets.get(path, 0) + len(complete)
            for text in complete.decode(errors="replace").splitlines():
                if "[cell] " in text or "[slurm] " in text:
                    sys.stderr.write(text + "\n")
            sys.stderr.flush()
