"""``python -m benchmark.run``: train baselines x datasets x seeds, evaluate, store results.

Re-running the same command resumes: finished cells are skipped, unfinished ones continue from
their last checkpoint. The command ends with a summary table and exits non-zero if a cell failed.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from baselines import contract
from benchmark.data.envs import ensure_headless_gl
from benchmark.datasets import DatasetError, build_dataset, known_dataset_ids, load_or_explain
from benchmark.datasets.build import state_dataset_id
from benchmark.datasets.store import is_built
from benchmark.harness import cost, precision, profiles, registry, runner, slurm
from benchmark.harness.cost import parse_duration
from benchmark.harness.overrides import OverrideError, Overrides, parse_overrides
from benchmark.harness.precision import PrecisionChoice
from benchmark.harness.profiles import Profile
from benchmark.harness.results import ONLINE, Cell, cell_progress, check_writable
from benchmark.harness.runner import CellTask, default_workers, plan_cells, threads_per_worker
from benchmark.harness.variant_eval import parse_eval_variants
from benchmark.progress import SUMMARY_EVERY_S, RunProgress, interactive

EXIT_FAILED_CELLS = 1
EXIT_USAGE = 2
# "Incomplete, run again": the time budget stopped some cells at a checkpoint (EX_TEMPFAIL).
EXIT_INCOMPLETE = 75


@dataclass(frozen=True)
class Plan:
    """What a command will do: the resolved selection and its cells."""

    profile: Profile  # with the --set profile items applied
    specs: tuple[registry.BaselineSpec, ...]
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    cells: tuple[Cell, ...]
    overrides: Overrides = field(default_factory=Overrides)


# -- argument parsing --------------------------------------------------------------------------
def _epilog() -> str:
    lines = ["baselines (--algos; also module:Class, see docs/agent-contract.md):"]
    lines += [_baseline_line(name) for name in registry.names()]
    lines += ["", "datasets (--datasets; 'default' = the profile's, 'all' = every one):"]
    lines += [f"  {dataset_id}" for dataset_id in known_dataset_ids()]
    lines += ["", "profiles (--profile):"]
    lines += [f"  {p.name:<10} {p.describe()}" for p in profiles.PROFILES.values()]
    lines += [
        "",
        "Online baselines run once per seed (dataset column 'online'), not once per dataset.",
        "smoke/demo build their small datasets on the fly; full needs the recipes' datasets",
        "(python -m benchmark.datasets build <id>, or download <id>).",
        "State baselines (obs state) train on the state-only builds of the same episodes",
        "(vorb-state/..., built on first use in minutes) and evaluate on the state walker.",
        "--algos all = both kinds; pixels / state = one kind. Profile 'state' is the state",
        "track's reference protocol (100,000 updates); the others apply to both kinds.",
    ]
    return "\n".join(lines)


def _baseline_line(name: str) -> str:
    """One baseline for ``--help``; a broken plugin is listed with its problem, not skipped."""
    try:
        spec = registry.get(name)
    except ValueError as error:
        return f"  {name:<18} BROKEN   {error}"
    kind = "offline" if spec.offline else "online "
    return f"  {spec.name:<18} {kind}  {spec.summary}" + (" [external]" if spec.external else "")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.run",
        description=__doc__,
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--algos",
        default="all",
        help="'all' (every baseline, pixels and state), 'pixels' (the pixel baselines), "
        "'state' (the state track's), or comma-separated baseline names or module:Class "
        "references (docs/agent-contract.md)",
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["default"],
        help="'default' (the profile's), 'all', or dataset ids (space- or comma-separated)",
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        default=None,
        help="one number N = seeds 0..N-1; several = those seeds (default: the profile's count)",
    )
    parser.add_argument("--profile", choices=list(profiles.PROFILES), default="demo")
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    parser.add_argument(
        "--launcher",
        choices=["local", "ray", "slurm"],
        default="local",
        help="local worker processes (default), Ray tasks, or a SLURM job array (submitit; "
        "the --slurm-* flags below; README, 'Running on a SLURM cluster')",
    )
    parser.add_argument("--ray-address", default=None, help="an existing Ray cluster (ray only)")
    parser.add_argument("--results", default="runs", help="results folder (default: runs)")
    parser.add_argument("--device", default="auto", help="'auto' (cuda if present), cpu, cuda:0")
    parser.add_argument(
        "--eval-variants",
        default=None,
        help="also evaluate each final agent on these visual variants (name or name:seed, "
        "comma-separated; benchmark.data.variants) into variants.csv",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="set a field of the profile or of the baselines' configs (repeatable), e.g. "
        "--set updates=200000 --set actor_lr=1e-3; recorded with every result",
    )
    parser.add_argument(
        "--time-budget",
        default=None,
        metavar="DURATION",
        help="stop every cell at a checkpoint before this much wall-clock time has passed "
        "(e.g. 25m, 2h, 900 or 900s), then exit with status 75: run the same command again",
    )
    parser.add_argument(
        "--summary-every",
        default=f"{SUMMARY_EVERY_S:g}s",
        metavar="DURATION",
        help="where stderr is not a terminal (a log file, CI), the run writes one line per cell "
        "event instead of progress bars, and a summary of the cells this often "
        f"(default {SUMMARY_EVERY_S:g}s)",
    )
    parser.add_argument(
        "--vectorize-seeds",
        choices=("off",),
        default="off",
        help="only 'off' (kept so that existing commands parse): vectorised seeds were removed, "
        "measured slower than separate seeds on CPUs for states and pixels (README, "
        "'Vectorised seeds')",
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print the cells, updates and evaluations and exit (with --probe: time estimate)",
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="with --plan: time a few updates of each baseline and a few rendered steps on the "
        "chosen device and estimate the run's wall-clock",
    )
    slurm.add_arguments(parser)
    return parser


def budget_reserve(budget_s: float) -> float:
    """Time kept back at the end of a budget to finish the update in flight, reach an exact
    checkpoint (online cells: the next episode start) and write it: a tenth of the budget,
    at least a minute, at most ten."""
    return min(max(0.1 * budget_s, 60.0), 600.0)


def parse_seeds(values: Sequence[str] | None, default_count: int) -> tuple[int, ...]:
    """``None`` -> the profile's count; ``["3"]`` -> 0, 1, 2; ``["0", "4"]`` or ``["0,4"]`` -> 0, 4."""
    if values is None:
        return tuple(range(default_count))
    parts = [part for value in values for part in value.split(",") if part.strip()]
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        raise ValueError(f"seeds must be integers, got {' '.join(values)!r}") from None
    if not numbers or any(n < 0 for n in numbers):
        raise ValueError(f"seeds must be non-negative integers, got {' '.join(values)!r}")
    if len(numbers) == 1 and "," not in "".join(values):
        if numbers[0] == 0:
            raise ValueError("a seed count must be at least 1 (write '--seeds 0,' for seed 0)")
        return tuple(range(numbers[0]))
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"seeds repeat: {' '.join(values)!r}")
    return tuple(numbers)


def parse_datasets(values: Sequence[str], profile: Profile) -> tuple[str, ...]:
    known = known_dataset_ids()
    parts = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if parts == ["default"]:
        return profile.datasets
    if parts == ["all"]:
        return tuple(known)
    unknown = [part for part in parts if part not in known]
    if unknown or not parts:
        raise ValueError(
            f"unknown dataset(s) {', '.join(unknown) or '(none given)'}; "
            f"valid: default, all, {', '.join(known)}"
        )
    return tuple(dict.fromkeys(parts))


def make_plan(args: argparse.Namespace) -> Plan:
    """Resolve the selection; raises ValueError/KeyError with the valid names."""
    specs = tuple(registry.resolve(args.algos))
    overrides = parse_overrides(args.overrides, (spec.config_class() for spec in specs))
    profile = overrides.profile_named(args.profile)
    check_ranges(profile, specs, overrides)
    datasets = parse_datasets(args.datasets, profile)
    seeds = parse_seeds(args.seeds, profile.seeds)

    cells = tuple(plan_cells(specs, datasets, seeds, profile))
    offline_datasets = datasets if any(s.offline for s in specs) else ()
    return Plan(profile, specs, offline_datasets, seeds, cells, overrides)


def check_ranges(
    profile: Profile, specs: Sequence[registry.BaselineSpec], overrides: Overrides
) -> None:
    """Every value within its declared range (``baselines.contract``), before any cell starts;
    raises :class:`~baselines.contract.RangeError` naming the field, the value and the range."""
    contract.check(profile, f"profile {profile.name!r}")
    for spec in specs:
        contract.check(overrides.config_for(spec, profile), f"{spec.name}'s config")


# -- datasets ------------------------------------------------------------------------------------
def prepare_datasets(plan: Plan, workers: int) -> dict[tuple[str, str], str]:
    """(recipe id, observation kind) -> the Minari id the cells load.

    Pixel cells load the profile's copy of the recipe: built on the fly for small profiles,
    checked (with how to build or download it) for ``full``. State cells load the state-only
    build of the same episodes (``vorb-state/...``: no frames, minutes to build, digest-checked
    against the recipe at full size), built here whenever it is missing.
    """

    profile, resolved = plan.profile, {}
    kinds = sorted({spec.obs_kind for spec in plan.specs if spec.offline})
    for recipe_id in plan.datasets:
        for kind in kinds:
            target = profile.dataset_id(recipe_id)
            if kind == "state":
                target = _ensure_state_dataset(recipe_id, target, profile, workers)
            elif profile.dataset_transitions is None:
                load_or_explain(target)
            else:
                _build_small(recipe_id, target, profile, workers, "pixels")
            resolved[recipe_id, kind] = target
    return resolved


def _ensure_state_dataset(recipe_id: str, target: str, profile: Profile, workers: int) -> str:
    state_target = state_dataset_id(target)
    if profile.dataset_transitions is None:
        if not is_built(state_target):
            print(f"[run] dataset {state_target}: building (state only)", file=sys.stderr)
            build_dataset(recipe_id, workers=workers, observation="state", progress=interactive())
        return state_target
    _build_small(recipe_id, state_target, profile, workers, "state")
    return state_target


def _build_small(
    recipe_id: str, target: str, profile: Profile, workers: int, observation: str
) -> None:

    print(f"[run] dataset {target}: loading or building", file=sys.stderr)
    build_dataset(
        recipe_id,
        transitions=profile.dataset_transitions,
        time_limit_s=profile.episode_time_limit_s,
        workers=workers,
        target_id=target,
        observation=observation,
        progress=interactive(),  # a bar on a terminal only
    )


def reference_datasets(plan: Plan, resolved: dict[tuple[str, str], str]) -> tuple[str, ...]:
    """Datasets whose reference scores online cells use: this run's, else this profile's built
    ones (an online-only run neither builds nor requires any)."""
    if resolved:
        return tuple(resolved.values())

    targets = (plan.profile.dataset_id(recipe_id) for recipe_id in plan.profile.datasets)
    return tuple(target for target in targets if is_built(target))


# -- output --------------------------------------------------------------------------------------
def print_plan(plan: Plan, root: str | Path) -> None:
    """The plan's cells, each with its progress in ``root`` where it has any (lanes resumed
    session after session show where every cell stands)."""
    print(f"profile {plan.profile.name}: {plan.profile.describe()}")
    if plan.overrides.profile or plan.overrides.config:
        print(f"--set: {plan.overrides.to_json()}")
    print(f"{len(plan.cells)} cells:")
    for cell in plan.cells:
        progress = cell_progress(root, cell)
        where = "" if progress.state == "new" else f"  {progress.describe()}"
        print(f"  {cell.algo:<18} {cell.dataset:<36} seed {cell.seed}{where}")
    sys.stdout.flush()  # the plan before the cells' lines, when both go to one file


def summary_table(outcomes: Sequence) -> str:
    header = (
        f"{'baseline':<18} {'dataset':<36} {'seed':>4} {'status':<8} {'updates':>9} "
        f"{'final':>8} {'best':>8}"
    )
    lines = [header, "-" * len(header)]
    for o in sorted(outcomes, key=lambda o: (o.cell.algo, o.cell.dataset, o.cell.seed)):
        score = lambda x: "" if math.isnan(x) else f"{x:.1f}"  # noqa: E731
        line = (
            f"{o.cell.algo:<18} {o.cell.dataset:<36} {o.cell.seed:>4} {o.status:<8} "
            f"{o.updates:>9} {score(o.final_score):>8} {score(o.best_score):>8}"
        )
        lines.append(line + (f"  {o.error}" if o.error else ""))
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------------
def resolve_device(name: str) -> str:
    """``auto`` -> cuda if present, else cpu; any other name is checked against this machine
    (ValueError naming what is available)."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    available = available_devices()
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(
            f"--device {name!r} is not a device name; available here: {', '.join(available)}"
        ) from None
    index = device.index or 0
    if device.type == "cuda" and index >= torch.cuda.device_count():
        raise ValueError(
            f"--device {name!r}: CUDA is not available here (torch {torch.__version__}, "
            f"{torch.cuda.device_count()} CUDA device(s)); available: {', '.join(available)}"
        )
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r} is not supported; available: {', '.join(available)}")
    return name


def available_devices() -> list[str]:
    import torch

    return ["cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        plan = make_plan(args)
        parse_eval_variants(args.eval_variants)
    except (KeyError, ValueError, OverrideError) as error:
        parser.error(str(error.args[0] if isinstance(error, KeyError) else error))
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    try:  # before any cell starts: a bad device or budget is a usage error
        args.device = check_device(args)
        budget = (
            parse_duration(args.time_budget, "--time-budget")
            if args.time_budget is not None
            else None
        )
        args.summary_every_s = parse_duration(args.summary_every, "--summary-every")
        args.slurm_options = slurm_options(args)
    except ValueError as error:
        parser.error(str(error))
    if args.plan:
        print_plan(plan, args.results)
        print_cost(plan, args)
        if args.slurm_options is not None:
            print(slurm.describe_jobs(plan.cells, args.slurm_options, args.results))
        return 0
    if args.slurm_options is not None:
        return execute_slurm(plan, args, args.slurm_options)
    return execute(plan, args, budget)


def check_device(args: argparse.Namespace) -> str:
    """The device on this machine; under SLURM only its form (each node resolves it)."""
    if args.launcher == "slurm":
        return slurm.check_device_name(args.device)
    return resolve_device(args.device)


def slurm_options(args: argparse.Namespace) -> slurm.SlurmOptions | None:
    """``--launcher slurm``'s options (ValueError for a bad one); None for other launchers."""
    given = [name for name, value in vars(args).items() if name.startswith("slurm_") and value]
    if args.launcher != "slurm":
        if given or args.no_wait:
            flags = ", ".join(f"--{n.replace('_', '-')}" for n in given) or "--no-wait"
            raise ValueError(f"{flags}: only with --launcher slurm (--launcher is {args.launcher})")
        return None
    if args.time_budget is not None:
        raise ValueError(
            "--time-budget is for the local and ray launchers: a SLURM task's budget is its "
            "job's time (--slurm-time), and it is requeued when that runs out"
        )
    return slurm.options_from_args(args)


def print_cost(plan: Plan, args: argparse.Namespace) -> None:
    """What the run costs: updates, evaluations and (with ``--probe``) a wall-clock estimate."""

    workers = args.workers or default_workers(len(plan.cells))
    print(cost.describe(plan, workers, args.device, probe=args.probe, root=args.results))


def execute(plan: Plan, args: argparse.Namespace, budget_s: float | None = None) -> int:
    # The budget counts from here: datasets built on the fly are inside it.
    stop_at = None if budget_s is None else runner.now() + budget_s - budget_reserve(budget_s)
    workers = args.workers or runner.default_workers(len(plan.cells))
    if (ready := prepare_run(plan, args, workers)) is None:
        return EXIT_USAGE
    root, dataset_ids = ready
    choice = decide_precision(plan, args.device, workers)
    tasks = make_tasks(plan, args, str(root), dataset_ids, workers, stop_at, choice)
    print_plan(plan, root)
    summary_every_s = getattr(args, "summary_every_s", SUMMARY_EVERY_S)
    progress = RunProgress(len(tasks), bars=interactive(), summary_every_s=summary_every_s)
    if args.launcher == "ray":
        outcomes = runner.run_ray(
            tasks, workers, args.ray_address, progress.outcome, on_tick=progress.tick
        )
    else:
        outcomes = runner.run_local(tasks, workers, progress.outcome, on_tick=progress.tick)
    progress.close()
    return finish(outcomes, root, args)


def execute_slurm(plan: Plan, args: argparse.Namespace, options: slurm.SlurmOptions) -> int:
    """``--launcher slurm``: datasets here (on the shared filesystem), cells as a job array."""
    workers = runner.default_workers(len(plan.cells))  # for building datasets here
    if (ready := prepare_run(plan, args, workers, slurm.require_submitit)) is None:
        return EXIT_USAGE
    root, dataset_ids = ready
    # A profile that asks for fp32 or bf16 is decided here; auto is measured on each node.
    choice = None if plan.profile.precision == precision.AUTO else decide_precision(plan, "cpu", 1)
    tasks = make_tasks(plan, args, str(root), dataset_ids, 1, None, choice)
    print_plan(plan, root)
    progress = RunProgress(len(tasks), bars=False, summary_every_s=args.summary_every_s)
    outcomes = slurm.launch(
        tasks, options, root, progress.outcome, progress.tick, wait=not args.no_wait
    )
    if args.no_wait:
        print(
            f"submitted; results arrive in {root} (report at any time: python -m "
            f"benchmark.report --results {args.results}; the same command resumes)"
        )
        return 0
    progress.close()
    return finish(outcomes, root, args)


def prepare_run(
    plan: Plan, args: argparse.Namespace, workers: int, *checks: Callable[[], None]
) -> tuple[Path, dict[tuple[str, str], str]] | None:
    """What every launcher needs first: the results folder, writable (and ``checks`` passed),
    and the plan's datasets, loaded or built here with ``workers``. None after an error line."""
    try:
        root = check_writable(args.results)
        for check in checks:
            check()
    except (PermissionError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    ensure_headless_gl()  # chosen once here; spawned workers inherit MUJOCO_GL
    try:
        return root, prepare_datasets(plan, workers)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return None


def finish(outcomes: Sequence, root: object, args: argparse.Namespace) -> int:
    """The summary table and the exit status: failed cells 1, paused ones 75, else 0."""
    print(summary_table(outcomes))
    print(f"results: {root}  (report: python -m benchmark.report --results {args.results})")
    bad = [o for o in outcomes if o.status in ("failed", "busy")]
    if bad:
        print(f"{len(bad)} of {len(outcomes)} cells did not finish", file=sys.stderr)
        return EXIT_FAILED_CELLS
    paused = [o for o in outcomes if o.status == "paused"]
    if paused:
        print(
            f"time budget reached: {len(outcomes) - len(paused)} cell(s) finished, "
            f"{len(paused)} stopped at a checkpoint and will resume when the same command "
            f"runs again (exit status {EXIT_INCOMPLETE}: incomplete)",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    return 0


def decide_precision(plan: Plan, device: str, workers: int) -> PrecisionChoice:
    """The run's precision, once for all its cells (``auto``: measured here, on the threads each
    worker will have)."""

    choice = precision.resolve(
        plan.profile.precision, resolve_device(device), plan.specs, threads_per_worker(workers)
    )
    print(
        f"[run] precision {choice.resolved} ({choice.requested}: {choice.reason})", file=sys.stderr
    )
    return choice


def make_tasks(
    plan: Plan,
    args: argparse.Namespace,
    root: str,
    dataset_ids: dict[tuple[str, str], str],
    workers: int,
    stop_at: float | None = None,
    precision: PrecisionChoice | None = None,
) -> list:
    # Under SLURM each node resolves the device (a login node may have no GPU).
    device = (
        args.device
        if getattr(args, "launcher", "local") == "slurm"
        else resolve_device(args.device)
    )
    threads = threads_per_worker(workers)
    return [
        CellTask(
            cell=cell,
            root=root,
            device=device,
            threads=threads,
            dataset_id=None
            if cell.dataset == ONLINE
            else dataset_ids[cell.dataset, registry.get(cell.algo).obs_kind],
            reference_ids=reference_datasets(plan, dataset_ids),
            minari_root=os.environ.get("MINARI_DATASETS_PATH"),
            overrides=plan.overrides,
            stop_at=stop_at,
            eval_variants=parse_eval_variants(args.eval_variants),
            spec=registry.get(cell.algo),
            precision=precision,
            progress=interactive(),  # bars on a terminal, plain event lines elsewhere
            log_lines=not interactive(),
        )
        for cell in plan.cells
    ]


if __name__ == "__main__":
    sys.exit(main())
