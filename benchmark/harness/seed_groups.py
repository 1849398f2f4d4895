"""Vectorised seeds: the seeds of one baseline on one dataset trained as one model, in one
process, while every seed stays a cell everywhere a user looks.

``--vectorize-seeds on`` turns the offline cells of each (baseline, dataset, profile) into one
:class:`GroupTask`. Its agent is built with ``members=S`` (``baselines/common/members.py``):
S independent networks in batched layers, each member with its own batches (one draw per
member from the dataset), noise draws, optimiser slices, temperature and targets; the update
backpropagates the sum of the members' losses, so each member's gradient is its own.

What stays per seed, exactly as for separate cells:

- its folder, ``evals.csv``, ``metrics.csv``, ``meta.json``, ``done`` and ``failed.json``
  (``meta.json`` ``setup.vectorized`` = the group's seeds and the member's index: part of the
  cell's identity, so a vectorised cell never resumes as a separate one or in another group);
- its checkpoint: each member's ``checkpoint.pt`` holds the whole group's trainer state (any
  one restarts the group) plus the member's own rows and metrics, written together at every
  evaluation, so a time-budget stop is exact for every seed;
- its failure: a member whose metrics or evaluation are not finite fails its own cell; its
  siblings go on (members never mix, so its NaNs reach no other member: tests/test_members.py).

Resume: the seeds of a group continue together from the newest checkpoint; a seed whose
checkpoint is older than its siblings' (it failed, or a kill fell between two checkpoint
writes) is refused with a message that says how to restart it. The group's RNG is seeded with
its first seed, so a vectorised seed's numbers differ from the same seed run on its own: it
learns the same within seed-to-seed noise (tests/test_seed_groups.py), not bit for bit.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from benchmark.harness import registry, runner  # runner imports this module only inside a function
from benchmark.harness.results import ONLINE, CellPaths, write_json, write_metrics, write_rows

VECTORIZE_CHOICES = ("off", "on")
# Measured default (README, "Vectorised seeds"): on this repository's 2-core CPUs a group of 3
# state seeds runs slower than 3 separate processes, so separate cells stay the default.
DEFAULT_VECTORIZE = "off"


@dataclass(frozen=True)
class GroupTask:
    """The cells one vectorised model trains: ``tasks`` are the members this command runs (of
    one baseline, dataset and profile); ``seeds`` are all the model's members, in order (a
    recorded group keeps its members even when a command asks for fewer of them)."""

    tasks: tuple[Any, ...]  # runner.CellTask
    seeds: tuple[int, ...]

    @property
    def label(self) -> str:
        cell = self.tasks[0].cell
        return f"{cell.algo} | {cell.dataset} | seeds {','.join(map(str, self.seeds))}"


# -- grouping ----------------------------------------------------------------------------------
def group_tasks(tasks: Sequence[Any]) -> list[Any]:
    """Cells -> work units: offline cells of one (baseline, dataset, profile) become groups;
    online cells, finished cells, cells begun as separate cells and groups of one stay cells.
    A cell begun in a group rejoins that group."""
    units: list[Any] = []
    by_key: dict[tuple[str, str, str], list[Any]] = {}
    for task in tasks:
        cell = task.cell
        spec = registry.get(cell.algo)
        if cell.dataset == ONLINE or not spec.offline or _started_alone(task):
            units.append(task)
        elif not takes_members(spec):
            print(
                f"[run] {cell.label}: {cell.algo}'s agent takes no 'members' argument, so its "
                "seeds run as separate cells (see baselines/common/members.py)",
                file=sys.stderr,
            )
            units.append(task)
        else:
            by_key.setdefault((cell.algo, cell.dataset, cell.profile), []).append(task)
    for members in by_key.values():
        units += _groups_of(members)
    return units


def takes_members(spec: registry.BaselineSpec) -> bool:
    """Whether the baseline's agent can be built vectorised (``Agent(..., members)``)."""
    parameters = inspect.signature(spec.agent_class().__init__).parameters
    return "members" in parameters


def _groups_of(tasks: list[Any]) -> list[Any]:
    recorded: dict[tuple[int, ...], list[Any]] = {}
    fresh: list[Any] = []
    for task in tasks:
        seeds = recorded_group(task)
        (recorded.setdefault(seeds, []) if seeds else fresh).append(task)
    units: list[Any] = [GroupTask(tuple(members), seeds) for seeds, members in recorded.items()]
    if len(fresh) > 1:
        units.append(GroupTask(tuple(fresh), tuple(task.cell.seed for task in fresh)))
    else:
        units += fresh
    return units


def _meta_of(task: Any) -> dict[str, Any] | None:
    paths = CellPaths.of(task.root, task.cell)
    if not paths.meta.exists():
        return None
    return json.loads(paths.meta.read_text())


def recorded_group(task: Any) -> tuple[int, ...] | None:
    """The seeds of the group a cell was begun in (``meta.json`` ``setup.vectorized``)."""
    meta = _meta_of(task)
    vectorized = (meta or {}).get("setup", {}).get("vectorized")
    return tuple(vectorized["seeds"]) if vectorized else None


def _started_alone(task: Any) -> bool:
    """Begun or finished as a separate cell: it continues (or is skipped) as one."""
    paths = CellPaths.of(task.root, task.cell)
    if paths.done.exists():
        return True
    meta = _meta_of(task)
    return meta is not None and recorded_group(task) is None


# -- one group ---------------------------------------------------------------------------------
class MemberAgent:
    """One member of a vectorised agent, seen as an ordinary agent (for evaluation): its
    observation goes to every member and the member's own action comes back."""

    def __init__(self, group: Any, member: int, members: int) -> None:
        self.group, self.member, self.members = group, member, members
        if hasattr(group, "value"):  # a critic's estimate only where the agent has a critic
            self.value = self._value

    def _all(self, obs: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(obs, (self.members, *obs.shape)))

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        return self.group.act(self._all(obs), deterministic=deterministic)[self.member]

    def _value(self, obs: np.ndarray) -> float:
        return float(self.group.value(self._all(obs))[self.member])


class MemberTrainer:
    """A member's view of the group's trainer: what the per-cell evaluation code reads."""

    def __init__(self, group: Any, member: int, members: int) -> None:
        self.group, self.member = group, member
        self.agent = MemberAgent(group.agent, member, members)
        self.device = group.device

    @property
    def updates(self) -> int:
        return self.group.updates

    @property
    def env_steps(self) -> int:
        return self.group.env_steps


def member_metrics(metrics: dict[str, Any], member: int) -> dict[str, Any]:
    """A member's slice of the group's per-member (M,) metrics (scalars are shared)."""
    sliced: dict[str, Any] = {}
    for name, value in metrics.items():
        ndim = getattr(value, "ndim", 0)
        sliced[name] = value[member] if ndim else value
    return sliced


def run_group(group: GroupTask) -> list[Any]:
    """Run (or resume) a group's cells; every error becomes its cells' failures, none escapes."""
    spec = group.tasks[0].spec
    if spec is not None:
        registry.adopt(spec)
    outcomes: list[Any] = []
    with contextlib.ExitStack() as stack:
        active = []
        for task in group.tasks:
            paths = CellPaths.of(task.root, task.cell)
            paths.folder.mkdir(parents=True, exist_ok=True)
            if not stack.enter_context(runner.cell_lock(paths)):
                outcomes.append(runner.CellOutcome(task.cell, "busy", error="another process"))
                continue
            for leftover in paths.folder.glob(".*.tmp"):
                leftover.unlink()
            active.append(task)
        if active and runner.out_of_time(active[0]):
            return outcomes + [
                runner.paused_outcome(t.cell, CellPaths.of(t.root, t.cell)) for t in active
            ]
        if active:
            try:
                outcomes += _train_group(group, active)
            except Exception as error:
                outcomes += [
                    runner.record_failure(t.cell, CellPaths.of(t.root, t.cell), error)
                    for t in active
                ]
    return outcomes


def _train_group(group: GroupTask, tasks: list[Any]) -> list[Any]:
    import os

    import torch

    first = tasks[0]
    if first.minari_root:
        os.environ["MINARI_DATASETS_PATH"] = first.minari_root
    torch.set_num_threads(first.threads)
    runs, trainer, outcomes = _build_group(group, tasks)
    if runs:
        eval_env = runs[0].protocol.make_env()
        try:
            outcomes += _group_loop(group, runs, trainer, eval_env)
        finally:
            eval_env.close()
    return outcomes


def _build_group(group: GroupTask, tasks: list[Any]) -> tuple[list[Any], Any, list[Any]]:
    """The group's trainer and one ``runner.CellRun`` per member cell that can run (resumed)."""
    import minari
    import torch

    from benchmark.data.sampler import FrameReplay
    from benchmark.data.state_replay import StateReplay, member_replay
    from benchmark.harness.evaluation import Protocol, reference_scores
    from benchmark.harness.training import OfflineTrainer, seed_everything

    first = tasks[0]
    spec = registry.get(first.cell.algo)
    profile = first.overrides.profile_named(first.cell.profile)
    config = first.config(spec, profile)
    protocol = Protocol.for_kind(
        spec.obs_kind, profile.eval_episodes_for(spec.obs_kind), profile.episode_time_limit_s
    )
    dataset = minari.load_dataset(first.dataset_id)
    replay_class = StateReplay if spec.obs_kind == "state" else FrameReplay
    replay = replay_class.from_minari(dataset, device=torch.device(first.device))
    normalizer = getattr(replay, "normalizer", None)
    references = reference_scores(dataset)
    members = len(group.seeds)
    seed_everything(group.seeds[0])
    agent = spec.agent_class()(
        config, replay.obs_shape, replay.action_dim, torch.device(first.device), members
    )
    sources = member_replay([replay] * members)
    trainer = OfflineTrainer(
        agent, sources, config.batch_size, group.seeds[0], torch.device(first.device)
    )
    runs, outcomes = [], []
    for task in tasks:
        member = group.seeds.index(task.cell.seed)
        paths = CellPaths.of(task.root, task.cell)
        meta = runner.cell_meta(task, config, profile, protocol, references)
        meta["setup"]["observation"] = spec.obs_kind
        if normalizer is not None:
            meta["setup"]["state_normalizer"] = normalizer.to_json()
        meta["setup"]["vectorized"] = {"seeds": list(group.seeds), "member": member}
        meta["vectorize_seeds"] = "on"
        try:
            runner.check_same_setup(paths, meta)
        except runner.ConfigMismatchError as error:
            outcomes.append(runner.record_failure(task.cell, paths, error))
            continue
        run = runner.CellRun(
            task,
            paths,
            profile,
            MemberTrainer(trainer, member, members),
            protocol,
            references,
            [],
            0.0,
            normalizer,
        )
        run.meta = meta  # type: ignore[attr-defined]
        runs.append(run)
    runs, refused = _resume_group(group, runs, trainer)
    outcomes += refused
    for run in runs:
        paths = run.paths
        paths.failed.unlink(missing_ok=True)
        runner.log_event(
            run,
            f"start at update {trainer.updates} of {run.total_updates} (vectorised: {group.label})",
        )
        run.meta["attempt_started"] = time.time()
        write_json(paths.meta, {**run.meta, "status": "running"})
    return runs, trainer, outcomes


def _resume_group(group: GroupTask, runs: list[Any], trainer: Any) -> tuple[list[Any], list]:
    """Load the newest checkpoint of the group; members behind it are refused."""
    import torch

    from benchmark.harness.results import EvalRow

    states = {}
    for run in runs:
        if run.paths.checkpoint.exists():
            try:
                states[run.task.cell.seed] = torch.load(
                    run.paths.checkpoint, map_location="cpu", weights_only=False
                )
            except Exception as error:
                raise runner.CheckpointError(
                    f"cannot resume from {run.paths.checkpoint}: {type(error).__name__}: "
                    f"{error}. To restart this group, delete the folders of seeds "
                    f"{list(group.seeds)} and run the same command again"
                ) from error
    if not states:
        for run in runs:
            write_rows(run.paths.evals, [])
            write_metrics(run.paths.metrics, [])
        return runs, []
    newest = max(states.values(), key=lambda state: state["trainer"]["updates"])
    latest = int(newest["trainer"]["updates"])
    trainer.load_state_dict(newest["trainer"])
    resumed, refused = [], []
    for run in runs:
        state = states.get(run.task.cell.seed)
        behind = 0 if state is None else int(state["trainer"]["updates"])
        if behind != latest:
            error = runner.CheckpointError(
                f"seed {run.task.cell.seed} stopped at update {behind}, its vectorised group "
                f"(seeds {list(group.seeds)}) at update {latest}: a group resumes only with all "
                f"its seeds at one update. To restart this seed, delete {run.paths.folder} and "
                "run the same command again (it then trains in a new group or alone)"
            )
            refused.append(runner.record_failure(run.task.cell, run.paths, error))
            continue
        run.rows = [EvalRow(**row) for row in state["rows"]]
        run.metric_rows = list(state.get("metric_rows", []))
        run.metrics.load_state_dict(state["metrics"], trainer.device)
        run.seconds = float(state["seconds"])
        write_rows(run.paths.evals, run.rows)
        write_metrics(run.paths.metrics, run.metric_rows)
        resumed.append(run)
    return resumed, refused


def _group_loop(group: GroupTask, runs: list[Any], trainer: Any, eval_env: Any) -> list[Any]:
    """Train the group, evaluate each member on schedule, checkpoint them together."""
    outcomes: list[Any] = []
    profile, algo = runs[0].profile, runs[0].task.cell.algo
    total, eval_interval = profile.updates_for(algo), profile.eval_interval_for(algo)
    started = time.perf_counter()
    elapsed = {id(run): (lambda r=run: r.seconds + time.perf_counter() - started) for run in runs}
    bar = runner.progress_bar(runs[0])
    bar.set_description(group.label)
    while trainer.updates < total and runs:
        if runner.out_of_time(runs[0].task):
            _checkpoint_group(group, runs, trainer, elapsed)
            bar.close()
            return outcomes + [_pause(run) for run in runs]
        runner.check_parent()
        metrics = trainer.step()
        for run in runs:
            run.metrics.add(member_metrics(metrics, run.trainer.member))
        bar.update(1)
        if trainer.updates % eval_interval == 0 or trainer.updates == total:
            runs = _evaluate_members(runs, eval_env, elapsed, outcomes)
            _checkpoint_group(group, runs, trainer, elapsed)
    # Members resumed after the last update (stopped between evaluation and done) are
    # evaluated once more, as a separate cell would be.
    stale = [run for run in runs if not run.rows or run.rows[-1].update != trainer.updates]
    alive = _evaluate_members(stale, eval_env, elapsed, outcomes)
    runs = [run for run in runs if run not in stale or run in alive]
    bar.close()
    return outcomes + [_finish(run) for run in runs]


def _evaluate_members(runs: list[Any], eval_env: Any, elapsed: dict, outcomes: list) -> list:
    """Evaluate each member; a member that fails (diverged) leaves the group's run."""
    alive = []
    for run in runs:
        try:
            runner.evaluate_cell(run, eval_env, elapsed[id(run)]())
        except Exception as error:
            outcomes.append(runner.record_failure(run.task.cell, run.paths, error))
            runner.log_event(run, f"failed: {type(error).__name__}: {error}")
            continue
        alive.append(run)
    return alive


def _checkpoint_group(group: GroupTask, runs: list[Any], trainer: Any, elapsed: dict) -> None:
    """Every member's checkpoint: the group's state (captured once) and its own rows."""
    import torch

    from benchmark.atomic import atomic_write

    state = trainer.state_dict()
    for run in runs:
        record = {
            "trainer": state,
            "group": {"seeds": list(group.seeds), "member": run.trainer.member},
            "rows": [asdict(row) for row in run.rows],
            "metric_rows": run.metric_rows,
            "metrics": run.metrics.state_dict(),
            "seconds": elapsed[id(run)](),
        }
        atomic_write(run.paths.checkpoint, lambda file, r=record: torch.save(r, file))
    for run in runs:
        runner.log_event(run, f"checkpoint at update {trainer.updates}")


def _pause(run: Any) -> Any:
    meta = {**run.meta, "status": "paused", "checkpoint_update": run.trainer.updates}
    write_json(run.paths.meta, meta)
    return runner.paused_outcome(run.task.cell, run.paths)


def _finish(run: Any) -> Any:
    from benchmark.atomic import atomic_write

    write_json(run.paths.meta, {**run.meta, "status": "done", "finished": time.time()})
    atomic_write(run.paths.done, lambda file: file.write(b"done\n"))
    return runner.finished_outcome(run.task.cell, run.paths, "done")
