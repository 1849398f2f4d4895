"""``python -m benchmark.run``: train baselines x datasets x seeds, evaluate, store results.

Re-running the same command resumes: finished cells are skipped, unfinished ones continue from
their last checkpoint. The command ends with a summary table and exits non-zero if a cell failed.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from benchmark import profiles, registry
from benchmark.profiles import Profile
from benchmark.results import ONLINE, Cell, check_writable
from benchmark.variant_eval import parse_eval_variants

EXIT_FAILED_CELLS = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class Plan:
    """What a command will do: the resolved selection and its cells."""

    profile: Profile
    specs: tuple[registry.BaselineSpec, ...]
    datasets: tuple[str, ...]
    seeds: tuple[int, ...]
    cells: tuple[Cell, ...]


# -- argument parsing --------------------------------------------------------------------------
def _epilog() -> str:
    from benchmark.datasets import known_dataset_ids

    lines = ["baselines (--algos):"]
    lines += [
        f"  {spec.name:<18} {'offline' if spec.offline else 'online '}  {spec.summary}"
        for spec in map(registry.get, registry.names())
    ]
    lines += ["", "datasets (--datasets; 'default' = the profile's, 'all' = every one):"]
    lines += [f"  {dataset_id}" for dataset_id in known_dataset_ids()]
    lines += ["", "profiles (--profile):"]
    lines += [f"  {p.name:<6} {p.describe()}" for p in profiles.PROFILES.values()]
    lines += [
        "",
        "Online baselines run once per seed (dataset column 'online'), not once per dataset.",
        "smoke/demo build their small datasets on the fly; full needs the recipes' datasets",
        "(python -m benchmark.datasets build <id>, or download <id>).",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.run",
        description=__doc__,
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--algos", default="all", help="'all' or comma-separated baseline names")
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
    parser.add_argument("--launcher", choices=["local", "ray"], default="local")
    parser.add_argument("--ray-address", default=None, help="an existing Ray cluster (ray only)")
    parser.add_argument("--results", default="runs", help="results folder (default: runs)")
    parser.add_argument("--device", default="auto", help="'auto' (cuda if present), cpu, cuda:0")
    parser.add_argument(
        "--eval-variants",
        default=None,
        help="also evaluate each final agent on these visual variants (name or name:seed, "
        "comma-separated; benchmark.variants) into variants.csv",
    )
    parser.add_argument("--plan", action="store_true", help="print the cells and exit")
    return parser


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
    from benchmark.datasets import known_dataset_ids

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
    profile = profiles.get(args.profile)
    specs = tuple(registry.resolve(args.algos))
    datasets = parse_datasets(args.datasets, profile)
    seeds = parse_seeds(args.seeds, profile.seeds)
    from benchmark.runner import plan_cells

    cells = tuple(plan_cells(specs, datasets, seeds, profile))
    return Plan(profile, specs, datasets if any(s.offline for s in specs) else (), seeds, cells)


# -- datasets ------------------------------------------------------------------------------------
def prepare_datasets(plan: Plan, workers: int) -> dict[str, str]:
    """Recipe id -> the Minari id the cells load: built on the fly for small profiles, checked
    (with how to build or download it) for ``full``."""
    from benchmark.datasets import build_dataset, load_or_explain

    profile, resolved = plan.profile, {}
    for recipe_id in plan.datasets:
        target = profile.dataset_id(recipe_id)
        if profile.dataset_transitions is None:
            load_or_explain(target)
        else:
            print(f"[run] dataset {target}: loading or building", file=sys.stderr)
            build_dataset(
                recipe_id,
                transitions=profile.dataset_transitions,
                time_limit_s=profile.episode_time_limit_s,
                workers=workers,
                target_id=target,
            )
        resolved[recipe_id] = target
    return resolved


def reference_datasets(plan: Plan, resolved: dict[str, str]) -> tuple[str, ...]:
    """Datasets whose reference scores online cells use: this run's, else this profile's built
    ones (an online-only run neither builds nor requires any)."""
    if resolved:
        return tuple(resolved.values())
    from benchmark.datasets.store import is_built

    targets = (plan.profile.dataset_id(recipe_id) for recipe_id in plan.profile.datasets)
    return tuple(target for target in targets if is_built(target))


# -- output --------------------------------------------------------------------------------------
def print_plan(plan: Plan) -> None:
    print(f"profile {plan.profile.name}: {plan.profile.describe()}")
    print(f"{len(plan.cells)} cells:")
    for cell in plan.cells:
        print(f"  {cell.algo:<18} {cell.dataset:<36} seed {cell.seed}")


def summary_table(outcomes: Sequence) -> str:
    header = f"{'baseline':<18} {'dataset':<36} {'seed':>4} {'status':<8} {'final':>8} {'best':>8}"
    lines = [header, "-" * len(header)]
    for o in sorted(outcomes, key=lambda o: (o.cell.algo, o.cell.dataset, o.cell.seed)):
        score = lambda x: "" if math.isnan(x) else f"{x:.1f}"  # noqa: E731
        line = (
            f"{o.cell.algo:<18} {o.cell.dataset:<36} {o.cell.seed:>4} {o.status:<8} "
            f"{score(o.final_score):>8} {score(o.best_score):>8}"
        )
        lines.append(line + (f"  {o.error}" if o.error else ""))
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------------
def resolve_device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        plan = make_plan(args)
        parse_eval_variants(args.eval_variants)
    except (KeyError, ValueError) as error:
        parser.error(str(error.args[0] if isinstance(error, KeyError) else error))
    if args.plan:
        print_plan(plan)
        return 0
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    return execute(plan, args)


def execute(plan: Plan, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from benchmark import runner
    from benchmark.datasets import DatasetError
    from benchmark.envs import ensure_headless_gl

    try:
        root = check_writable(args.results)
    except PermissionError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    workers = args.workers or runner.default_workers(len(plan.cells))
    ensure_headless_gl()  # chosen once here; spawned workers inherit MUJOCO_GL
    try:
        dataset_ids = prepare_datasets(plan, workers)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    tasks = make_tasks(plan, args, str(root), dataset_ids, workers)
    print_plan(plan)
    bar = tqdm(total=len(tasks), desc="cells", unit="cell", position=0)

    def on_outcome(outcome: runner.CellOutcome) -> None:
        bar.update(1)
        if outcome.status == "failed":
            bar.write(f"[run] FAILED {outcome.cell.label}: {outcome.error}")

    if args.launcher == "ray":
        outcomes = runner.run_ray(tasks, workers, args.ray_address, on_outcome)
    else:
        outcomes = runner.run_local(tasks, workers, on_outcome)
    bar.close()
    print(summary_table(outcomes))
    print(f"results: {root}  (report: python -m benchmark.report --results {args.results})")
    bad = [o for o in outcomes if o.status in ("failed", "busy")]
    if bad:
        print(f"{len(bad)} of {len(outcomes)} cells did not finish", file=sys.stderr)
        return EXIT_FAILED_CELLS
    return 0


def make_tasks(
    plan: Plan, args: argparse.Namespace, root: str, dataset_ids: dict[str, str], workers: int
) -> list:
    import os

    from benchmark.runner import CellTask, threads_per_worker

    device = resolve_device(args.device)
    threads = threads_per_worker(workers)
    return [
        CellTask(
            cell=cell,
            root=root,
            device=device,
            threads=threads,
            dataset_id=None if cell.dataset == ONLINE else dataset_ids[cell.dataset],
            reference_ids=reference_datasets(plan, dataset_ids),
            minari_root=os.environ.get("MINARI_DATASETS_PATH"),
            eval_variants=parse_eval_variants(args.eval_variants),
        )
        for cell in plan.cells
    ]


if __name__ == "__main__":
    sys.exit(main())
