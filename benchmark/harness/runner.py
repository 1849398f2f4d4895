"""Cells, their execution in worker processes or Ray tasks, resume and failure isolation.

A cell (baseline x dataset x seed) is the unit of work and of failure. :func:`run_cell` is the
one function every launcher calls; it trains, evaluates on schedule, checkpoints atomically and
never raises: an error or a diverged metric becomes ``failed.json`` and a failed outcome, so the
other cells go on. Re-running the same command skips cells with a ``done`` marker and resumes
the others from their checkpoint, which also holds the rows evaluated up to it: rows written
after the checkpoint are discarded and recomputed, so a resumed cell's table equals an
uninterrupted one's (apart from the wall-clock column).

One lifecycle: :func:`run_cell` locks the cell, :func:`build_run` builds or resumes it,
:func:`_training_loop` trains, evaluates and checkpoints it, and the outcome is written last.
A cell whose lock is held waits up to :data:`LOCK_WAIT_S` for it (a rerun started right after
``kill -9`` of a whole run finds workers of the killed run still exiting), then is "busy".
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import multiprocessing as mp
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import gymnasium as gym
from tqdm import tqdm

from benchmark.atomic import atomic_write
from benchmark.harness import registry
from benchmark.harness.cost import available_cores, default_workers, threads_per_worker  # noqa: F401
from benchmark.harness.diagnostics import MetricsAccumulator, first_non_finite
from benchmark.harness.overrides import Overrides
from benchmark.harness.plugins import provenance
from benchmark.harness.precision import PrecisionChoice, config_precision
from benchmark.harness.profiles import Profile
from benchmark.harness.results import (
    ONLINE,
    Cell,
    CellPaths,
    EvalRow,
    checkpointed_update,
    git_commit,
    host_info,
    package_versions,
    read_evals,
    write_json,
    write_metrics,
    write_rows,
)
from benchmark.harness.variant_eval import evaluate_variants
from benchmark.progress import TICK_S, UPDATE_LINE_EVERY_S, UpdateLines, cell_event

EXIT_ORPHANED = 3  # a local worker's exit status when its launcher died
# How long a cell waits for its lock: a SIGKILLed worker holds it until the kernel has torn the
# process down (its memory, its GL context), which takes seconds, not minutes. Past this, the
# holder is taken to be another live command on the same results folder: the cell is "busy".
LOCK_WAIT_S = 60.0


class DivergedError(RuntimeError):
    """A training metric or an evaluation return is not finite."""


class ConfigMismatchError(RuntimeError):
    """A cell folder holds results made with another configuration: resuming would mix them."""


class CheckpointError(RuntimeError):
    """A cell's checkpoint cannot be read or does not fit its trainer."""


@dataclass(frozen=True)
class CellTask:
    """Everything a worker (local process or Ray task) needs to run one cell.

    dataset_id: the Minari id actually loaded (a profile's small variant or the recipe's own).
    reference_ids: datasets whose reference scores online cells use (this profile's datasets).
    minari_root: ``MINARI_DATASETS_PATH`` to use in the worker (Ray workers may not inherit it).
    overrides: the command's ``--set`` items, applied to the profile and the config.
    stop_at: wall-clock time (``time.time()``) after which the cell stops at its next exact
        checkpoint (``--time-budget``); None: train to the end.
    precision: the run's precision, decided once before any cell (``benchmark.harness.precision``);
        None: the profile's as asked (``auto`` then stays fp32).
    """

    cell: Cell
    root: str
    device: str
    threads: int
    dataset_id: str | None
    reference_ids: tuple[str, ...] = ()
    minari_root: str | None = None
    progress: bool = True
    log_lines: bool = False  # one plain line per cell event (benchmark.progress): not a terminal
    update_line_every_s: float = UPDATE_LINE_EVERY_S  # with log_lines: the updates' own lines
    overrides: Overrides = field(default_factory=Overrides)
    stop_at: float | None = None
    eval_variants: tuple[
        str, ...
    ] = ()  # benchmark.harness.variant_eval labels, after the final eval
    # The cell's baseline as the launcher resolved it: a spec registered by a user's script or
    # by --algos module:Class exists only in the launcher's registry (benchmark.harness.plugins).
    spec: registry.BaselineSpec | None = None
    precision: PrecisionChoice | None = None

    def config(self, spec: registry.BaselineSpec, profile: Profile) -> Any:
        """This cell's config: the command's items and the run's precision applied."""
        resolved = self.precision.resolved if self.precision is not None else None
        return self.overrides.config_for(spec, profile, resolved)


@dataclass(frozen=True)
class CellOutcome:
    cell: Cell
    # "done", "skipped" (already done), "failed", "busy" (another process has it),
    # "paused" (stopped by the time budget at a checkpoint: the next run resumes it)
    status: str
    final_score: float = math.nan
    best_score: float = math.nan
    updates: int = 0
    seconds: float = 0.0
    error: str | None = None


# -- planning ----------------------------------------------------------------------------------
def plan_cells(
    specs: Sequence[registry.BaselineSpec],
    datasets: Sequence[str],
    seeds: Sequence[int],
    profile: Profile,
) -> list[Cell]:
    """Offline baselines x datasets x seeds, then online baselines x seeds (dataset ``online``)."""
    cells = [
        Cell(spec.name, dataset, seed, profile.name)
        for spec in specs
        if spec.offline
        for dataset in datasets
        for seed in seeds
    ]
    cells += [
        Cell(spec.name, ONLINE, seed, profile.name)
        for spec in specs
        if not spec.offline
        for seed in seeds
    ]
    return cells


# -- one cell ----------------------------------------------------------------------------------
_PARENT_PID: int | None = None  # set in local workers: stop if the launching process dies
_SLOT = 0  # this worker's progress-bar line


def run_cell(task: CellTask) -> CellOutcome:
    """Run (or resume, or skip) one cell; every error is recorded, none escapes."""
    if task.spec is not None:
        registry.adopt(task.spec)
    paths = CellPaths.of(task.root, task.cell)
    if paths.done.exists():
        if (conflict := _finished_with_other_setup(task, paths)) is not None:
            return CellOutcome(task.cell, "failed", error=conflict)
        return finished_outcome(task.cell, paths, "skipped")
    paths.folder.mkdir(parents=True, exist_ok=True)
    with cell_lock(paths) as locked:
        if not locked:
            error = f"another process has held this cell for {LOCK_WAIT_S:.0f} s"
            return CellOutcome(task.cell, "busy", error=error)
        for leftover in paths.folder.glob(".*.tmp"):  # half-written files of a killed attempt
            leftover.unlink()
        if out_of_time(task):  # the budget ran out before this cell's turn came
            return paused_outcome(task.cell, paths)
        try:
            finished = _train_cell(task, paths)
        except Exception as error:
            return record_failure(task.cell, paths, error)
    if not finished:
        return paused_outcome(task.cell, paths)
    return finished_outcome(task.cell, paths, "done")


def now() -> float:
    """The wall clock the time budget is measured on (one place, so tests can drive it)."""
    return time.time()


def _finished_with_other_setup(task: CellTask, paths: CellPaths) -> str | None:
    """A finished cell is skipped only if the command asks for what it holds: the same config,
    profile and ``--set`` items (a cheap check: no dataset is loaded for it)."""

    before = json.loads(paths.meta.read_text()).get("setup", {})
    profile = task.overrides.profile_named(task.cell.profile)
    wanted = _requested_setup(task, task.config(registry.get(task.cell.algo), profile), profile)
    held = {key: before.get(key) for key in wanted}
    if _same_setup(held, wanted):
        return None
    return str(ConfigMismatchError(_mismatch_message(paths)))


# Fields the state configs no longer carry (issue 28): the pixel encoder's and CURL's, which no
# state agent ever read (the agents' hash tests hold across the change). A cell recorded with
# them is the same setup as one recorded without.
RETIRED_STATE_FIELDS = frozenset(
    {"feature_dim", "num_layers", "num_filters", "aug_pad", "curl_lr", "encoder_tau"}
)


def _same_setup(held: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """Whether a cell's recorded setup is the one ``wanted``, retired fields aside."""
    if held is not None and isinstance(held.get("config"), dict):
        config = wanted.get("config", {})
        retired = RETIRED_STATE_FIELDS - config.keys()
        held = {**held, "config": {k: v for k, v in held["config"].items() if k not in retired}}
    return _canonical(held) == _canonical(wanted)


def _canonical(record: Any) -> str:

    # Compared as canonical JSON text: NaN (no references) equals itself there.
    return json.dumps(record, sort_keys=True, default=str)


def _mismatch_message(paths: CellPaths) -> str:
    return (
        f"{paths.folder} holds results of another configuration (config, profile, "
        "evaluation, dataset or --set items changed); use another --results folder or delete "
        "that one"
    )


_STOP_REQUESTED = False  # set by request_stop: every cell of this process is out of time


def request_stop() -> None:
    """Every cell of this process stops at its next exact checkpoint, as at the end of its
    time budget: called from a signal handler (SLURM's warning before a time limit or a
    preemption, :mod:`benchmark.harness.slurm`), so it only sets a flag."""
    global _STOP_REQUESTED
    _STOP_REQUESTED = True


def out_of_time(task: CellTask) -> bool:
    return _STOP_REQUESTED or (task.stop_at is not None and now() >= task.stop_at)


def paused_outcome(cell: Cell, paths: CellPaths) -> CellOutcome:
    """A cell the budget stopped (or never started): the updates its checkpoint holds."""

    meta = json.loads(paths.meta.read_text()) if paths.meta.exists() else {}
    return CellOutcome(cell, "paused", updates=checkpointed_update(meta))


@contextlib.contextmanager
def cell_lock(paths: CellPaths, wait_s: float = LOCK_WAIT_S) -> Iterator[bool]:
    """An advisory lock per cell: two commands on one results folder never write one cell.
    A held lock is waited for up to ``wait_s`` (its holder may be a killed worker exiting)."""
    deadline = time.monotonic() + wait_s
    with open(paths.folder / ".lock", "w") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.1)
        yield True


def finished_outcome(cell: Cell, paths: CellPaths, status: str) -> CellOutcome:
    rows = read_evals(paths.evals)
    last = rows.iloc[-1]
    return CellOutcome(
        cell,
        status,
        final_score=float(last["normalized_score"]),
        best_score=float(rows["normalized_score"].max()),
        updates=int(last["update"]),
        seconds=float(last["seconds"]),
    )


def record_failure(cell: Cell, paths: CellPaths, error: BaseException) -> CellOutcome:
    message = f"{type(error).__name__}: {error}"
    write_json(
        paths.failed,
        {
            "cell": asdict(cell),
            "error": message,
            "traceback": traceback.format_exception(error),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    return CellOutcome(cell, "failed", error=message)


@dataclass
class CellRun:
    """The mutable state of one cell while it trains."""

    task: CellTask
    paths: CellPaths
    profile: Profile
    trainer: Any
    protocol: Any
    references: Any
    rows: list[EvalRow]
    seconds: float  # training wall-clock of earlier attempts
    normalizer: Any = None  # state cells: the StateNormalizer applied to evaluation states
    metrics: MetricsAccumulator = field(default_factory=MetricsAccumulator)
    metric_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total_updates(self) -> int:
        return self.profile.updates_for(self.task.cell.algo)


def _train_cell(task: CellTask, paths: CellPaths) -> bool:
    """Train the cell to its end (True) or, under a time budget, to a checkpoint (False)."""
    if task.minari_root:
        os.environ["MINARI_DATASETS_PATH"] = task.minari_root
    import torch

    torch.set_num_threads(task.threads)
    run, meta = build_run(task, paths)
    paths.failed.unlink(missing_ok=True)
    eval_env = run.protocol.make_env()
    try:
        finished = _training_loop(run, eval_env)
        if finished and task.eval_variants:  # once, at the end: see benchmark.harness.variant_eval
            evaluate_variants(run)
    finally:
        eval_env.close()
        close = getattr(getattr(run.trainer, "env", None), "close", None)
        if close is not None:
            close()
    if not finished:
        updates = run.trainer.updates
        write_json(paths.meta, {**meta, "status": "paused", "checkpoint_update": updates})
        return False
    write_json(paths.meta, {**meta, "status": "done", "finished": time.time()})
    # Written last: its presence is the one meaning of "finished".
    atomic_write(paths.done, lambda file: file.write(b"done\n"))
    return True


def build_run(task: CellTask, paths: CellPaths) -> tuple[CellRun, dict[str, Any]]:
    # Late: a cell's build loads minari and torch; --help and --plan import this module.
    import minari
    import torch

    from benchmark.data.sampler import FrameReplay
    from benchmark.data.state_replay import StateNormalizer, StateReplay
    from benchmark.harness.evaluation import Protocol, reference_scores
    from benchmark.harness.training import make_trainer

    cell = task.cell
    profile = task.overrides.profile_named(cell.profile)
    spec = registry.get(cell.algo)
    config = task.config(spec, profile)
    protocol = Protocol.for_kind(
        spec.obs_kind, profile.eval_episodes_for(spec.obs_kind), profile.episode_time_limit_s
    )
    normalizer = None
    if spec.offline:
        dataset = minari.load_dataset(task.dataset_id)
        replay = StateReplay if spec.obs_kind == "state" else FrameReplay
        source: Any = replay.from_minari(dataset, device=torch.device(task.device))
        normalizer = getattr(source, "normalizer", None)
        references = reference_scores(dataset)
    else:
        candidates = tuple(minari.load_dataset(i) for i in task.reference_ids)
        source = gym.make(protocol.env_id, time_limit_s=profile.episode_time_limit_s)
        references = reference_scores(None, candidates)
    if spec.obs_kind == "state" and normalizer is None:  # online: raw states
        normalizer = StateNormalizer.identity(source.observation_space["state"].shape[0])
    meta = cell_meta(task, config, profile, protocol, references)
    meta["setup"]["observation"] = spec.obs_kind
    if normalizer is not None:  # applied to every evaluation state: part of the setup
        meta["setup"]["state_normalizer"] = normalizer.to_json()
    check_same_setup(paths, meta)
    trainer = make_trainer(spec, config, source, cell.seed, torch.device(task.device))
    # Online replay: checkpoints write only its new frames, as chunk files in replay/.
    trainer.attach_store(paths.folder / "replay")
    run = CellRun(task, paths, profile, trainer, protocol, references, [], 0.0, normalizer)
    _resume(run)
    log_event(run, f"start at update {trainer.updates} of {run.total_updates}")
    meta["attempt_started"] = time.time()
    write_json(paths.meta, {**meta, "status": "running"})
    return run, meta


def _requested_setup(task: CellTask, config: Any, profile: Profile) -> dict[str, Any]:
    """The part of a cell's setup the command decides: config, profile and ``--set`` items."""
    return {
        "config": asdict(config),
        "profile": profile.to_json(),
        "overrides": task.overrides.to_json(),  # the --set items behind config and profile
        "precision": config_precision(config),  # what it trained in: never resumed in another
    }


def cell_meta(
    task: CellTask, config: Any, profile: Profile, protocol: Any, references: Any
) -> dict:
    return {
        "cell": asdict(task.cell),
        "setup": {  # what must not change between attempts of one cell
            **_requested_setup(task, config, profile),
            "evaluation": protocol.to_json(),
            "dataset_id": task.dataset_id,
            "references": asdict(references),
        },
        "device": task.device,
        "precision": task.precision.to_json() if task.precision is not None else None,
        "torch_threads": task.threads,
        "vectorize_seeds": "off",  # kept in the format: vectorised seeds were removed (README)
        "versions": package_versions(),
        "git": git_commit(),
        "host": host_info(),
        "plugin": provenance(registry.get(task.cell.algo), config),  # built-in or external
    }


def check_same_setup(paths: CellPaths, meta: dict) -> None:
    if not paths.meta.exists():
        return
    before = json.loads(paths.meta.read_text()).get("setup")
    if not _same_setup(before, meta["setup"]):
        raise ConfigMismatchError(_mismatch_message(paths))


def _resume(run: CellRun) -> None:
    """Continue from the checkpoint: its trainer state and the rows evaluated up to it."""
    import torch

    if not run.paths.checkpoint.exists():
        write_rows(run.paths.evals, [])
        write_metrics(run.paths.metrics, [])
        return
    try:
        state = torch.load(run.paths.checkpoint, map_location="cpu", weights_only=False)
        run.trainer.load_state_dict(state["trainer"])
        run.rows = [EvalRow(**row) for row in state["rows"]]
        run.metric_rows = list(state.get("metric_rows", []))
        run.metrics.load_state_dict(
            state.get("metrics", {"sums": {}, "counts": {}}), run.trainer.device
        )
        run.seconds = float(state["seconds"])
    except Exception as error:
        raise CheckpointError(
            f"cannot resume from {run.paths.checkpoint}: {type(error).__name__}: {error}. "
            f"To restart this cell from scratch, delete its folder {run.paths.folder} "
            "and run the same command again"
        ) from error
    write_rows(run.paths.evals, run.rows)  # drops rows evaluated after the checkpoint
    write_metrics(run.paths.metrics, run.metric_rows)


def _training_loop(run: CellRun, eval_env: Any) -> bool:
    """Train, evaluate on schedule, checkpoint; True at the end, False when the time budget
    stopped the cell at an exact checkpoint (offline: any update; online: an episode start)."""
    trainer, profile = run.trainer, run.profile
    eval_interval = profile.eval_interval_for(run.task.cell.algo)
    started = time.perf_counter()
    elapsed = lambda: run.seconds + time.perf_counter() - started  # noqa: E731
    checkpoint_due = False
    exact_here = lambda: getattr(trainer, "at_episode_boundary", True)  # noqa: E731
    bar = progress_bar(run)
    lines = UpdateLines(
        run.task.cell.label,
        run.total_updates,
        trainer.updates,
        run.task.update_line_every_s,
        enabled=run.task.log_lines,
    )
    while trainer.updates < run.total_updates:
        if out_of_time(run.task) and exact_here():
            _checkpoint(run, elapsed())
            bar.close()
            return False
        check_parent()
        before = trainer.updates
        metrics = trainer.step()
        if trainer.updates == before:  # online warm-up: environment steps without updates
            continue
        run.metrics.add(metrics)  # summed on the device: no host-device sync per update
        bar.update(1)
        lines.update(trainer.updates)
        if trainer.updates % eval_interval == 0 or trainer.updates == run.total_updates:
            evaluate_cell(run, eval_env, elapsed())
            checkpoint_due = True
        # Online trainers are exact only at episode boundaries: checkpoint at the first one.
        if checkpoint_due and exact_here():
            _checkpoint(run, elapsed())
            checkpoint_due = False
    if not run.rows or run.rows[-1].update != trainer.updates:
        # a resumed cell that had already trained to the end
        evaluate_cell(run, eval_env, elapsed())
    bar.close()
    return True


def progress_bar(run: CellRun) -> tqdm:
    return tqdm(
        total=run.total_updates,
        initial=run.trainer.updates,
        desc=run.task.cell.label,
        unit="upd",
        position=_SLOT,
        leave=False,
        disable=not run.task.progress,
    )


def check_parent() -> None:
    # A local worker whose launcher was killed stops, so a re-run never races with it. It ends
    # at once (os._exit): a SystemExit would unwind into the pool's worker loop, which then
    # blocks forever reporting to the dead launcher. The last checkpoint stays on disk and the
    # cell lock goes with the process.
    if _PARENT_PID is not None and os.getppid() != _PARENT_PID:
        print("[run] the launching process is gone: stopping this worker", file=sys.stderr)
        os._exit(EXIT_ORPHANED)


def _record_metrics(run: CellRun) -> None:
    """Average the metrics since the last evaluation into one row (one device read) and check
    them: a non-finite average means some update in the window diverged."""
    if not run.metrics:
        return
    means = run.metrics.means()
    window = (run.metric_rows[-1]["update"] if run.metric_rows else 0, run.trainer.updates)
    if (name := first_non_finite(means)) is not None:
        raise DivergedError(
            f"metric {name!r} is {means[name]} (mean over updates {window[0] + 1}..{window[1]})"
        )
    cell = run.task.cell
    run.metric_rows.append(
        {
            "algo": cell.algo,
            "dataset": cell.dataset,
            "seed": cell.seed,
            "profile": cell.profile,
            "update": run.trainer.updates,
            **means,
        }
    )
    run.metrics.reset()
    write_metrics(run.paths.metrics, run.metric_rows)


def evaluate_cell(run: CellRun, eval_env: Any, seconds: float) -> None:
    """Evaluate without disturbing training: global RNGs are restored afterwards."""
    from benchmark.harness.evaluation import evaluate
    from benchmark.harness.training import rng_state, set_rng_state

    _record_metrics(run)
    saved = rng_state()
    result = evaluate(run.trainer.agent, eval_env, run.protocol, run.references, run.normalizer)
    set_rng_state(saved)
    if not math.isfinite(result.mean):
        raise DivergedError(f"evaluation return is {result.mean} at update {run.trainer.updates}")
    cell = run.task.cell
    run.rows.append(
        EvalRow(
            algo=cell.algo,
            dataset=cell.dataset,
            seed=cell.seed,
            profile=cell.profile,
            update=run.trainer.updates,
            env_steps=run.trainer.env_steps,
            return_mean=result.mean,
            return_std=result.std,
            normalized_score=result.normalized_score,
            seconds=round(seconds, 3),
            q_estimate=result.q_estimate,
            discounted_return=result.discounted_return,
            observation=run.protocol.observation,
        )
    )
    write_rows(run.paths.evals, run.rows)
    log_event(
        run,
        f"evaluation at update {run.trainer.updates} of {run.total_updates}: return "
        f"{result.mean:.1f} ± {result.std:.1f}, normalised {result.normalized_score:.1f}",
    )


def log_event(run: CellRun, text: str) -> None:
    if run.task.log_lines:
        cell_event(run.task.cell.label, text)


def _checkpoint(run: CellRun, seconds: float) -> None:
    import torch

    state = {
        "trainer": run.trainer.state_dict(),
        "rows": [asdict(row) for row in run.rows],
        "metric_rows": run.metric_rows,
        "metrics": run.metrics.state_dict(),  # the window since the last evaluation
        "seconds": seconds,
    }
    atomic_write(run.paths.checkpoint, lambda file: torch.save(state, file))
    run.trainer.checkpoint_saved()  # in place: replay chunks it no longer needs can go
    log_event(run, f"checkpoint at update {run.trainer.updates}")


# -- launchers ---------------------------------------------------------------------------------
def _init_worker(counter: Any, parent_pid: int) -> None:
    global _PARENT_PID, _SLOT
    _PARENT_PID = parent_pid
    with counter.get_lock():
        counter.value += 1
        _SLOT = counter.value


def run_local(
    tasks: Sequence[CellTask],
    workers: int,
    on_outcome: Callable[[CellOutcome], None],
    on_tick: Callable[[], None] = lambda: None,
) -> list[CellOutcome]:
    """Cells in ``workers`` spawned processes (spawn: MuJoCo's GL context does not survive fork);
    ``on_tick`` is called about every ``TICK_S`` while the launcher waits."""
    context = mp.get_context("spawn")
    counter = context.Value("i", 0)
    outcomes: list[CellOutcome] = []
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(counter, os.getpid())
    ) as pool:
        pending: dict[Future, CellTask] = {pool.submit(run_cell, task): task for task in tasks}
        while pending:
            finished, _ = wait(pending, timeout=TICK_S, return_when=FIRST_COMPLETED)
            on_tick()
            for future in finished:
                outcome = outcome_of(future.result, pending.pop(future))
                outcomes.append(outcome)
                on_outcome(outcome)
    return outcomes


def run_ray(
    tasks: Sequence[CellTask],
    workers: int,
    address: str | None,
    on_outcome: Callable[[CellOutcome], None],
    on_tick: Callable[[], None] = lambda: None,
) -> list[CellOutcome]:
    """The same :func:`run_cell` as Ray tasks, on a local instance or an existing cluster.

    Cells write to the same results store, so ``--results`` must be a path every node sees.
    """
    try:
        import ray
    except ImportError as error:
        raise RuntimeError("--launcher ray needs Ray: pip install -e '.[ray]'") from error
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    threads = max(task.threads for task in tasks)
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=threads, max_retries=0)(run_cell)
        # Without progress bars: Ray workers have no terminal.
        pending = {remote.remote(replace(task, progress=False)): task for task in tasks}
        outcomes: list[CellOutcome] = []
        while pending:
            finished, _ = ray.wait(list(pending), num_returns=1, timeout=TICK_S)
            on_tick()
            if not finished:
                continue
            outcome = outcome_of(lambda ref=finished[0]: ray.get(ref), pending.pop(finished[0]))
            outcomes.append(outcome)
            on_outcome(outcome)
        return outcomes
    finally:
        ray.shutdown()


def outcome_of(result: Callable[[], CellOutcome], task: CellTask) -> CellOutcome:
    """A worker that died outright (segfault, OOM kill) fails its cell, not the command."""
    try:
        return result()
    except Exception as error:
        return record_failure(task.cell, CellPaths.of(task.root, task.cell), error)
