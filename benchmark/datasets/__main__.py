"""``python -m benchmark.datasets``: list, build, verify, re-render, download, publish, card and
export datasets, and train the behaviour policies that collect them."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from benchmark.data.variants import VARIANTS
from benchmark.datasets.build import AGENT_STEP_S, build_dataset, state_dataset_id, variant_id
from benchmark.datasets.card import write_card
from benchmark.datasets.export import export_dataset
from benchmark.datasets.policies import POLICY_DIR
from benchmark.datasets.recipes import RecipeError, get_recipe, load_recipes
from benchmark.datasets.rerender import rerender_dataset, resolve, variant_dataset_id
from benchmark.datasets.store import DatasetError, dataset_dir, folder_bytes, is_built
from benchmark.datasets.train_behaviour import (
    POLICY_FILES,
    BehaviourTrainer,
    BehaviourTraining,
    behaviour_sac_config,
    record_deterministic_return,
)
from benchmark.datasets.verify import verify_dataset
from benchmark.harness.overrides import OverrideError, parse_value, settable_fields


def _ids(name: str) -> list[str]:
    """``all`` -> every recipe id, concatenations last (they read the others); else ``[name]``."""
    if name != "all":
        get_recipe(name)  # an unknown id fails here, listing the valid ones
        return [name]
    recipes = load_recipes()
    order = ("random", "replay", "policy", "concat")  # cheapest first; concat reads the others
    return sorted(recipes, key=lambda i: order.index(recipes[i].source.kind))


def _size(dataset_id: str) -> str:
    if not is_built(dataset_id):
        return "not built"
    return f"built, {folder_bytes(dataset_dir(dataset_id)) / 1e6:,.1f} MB"


def cmd_list(args: argparse.Namespace) -> None:
    import minari

    recipes = load_recipes()
    for dataset_id, recipe in recipes.items():
        count = recipe.transitions if recipe.transitions is not None else "all"
        print(
            f"{dataset_id:40s} {recipe.source.kind:7s} {count!s:>7s} transitions  {_size(dataset_id)}"
        )
    others = [d for d in minari.list_local_datasets() if d not in recipes]
    if others:
        print("other local datasets (resized variants, downloads):")
        for dataset_id in others:
            print(f"  {dataset_id:38s} {_size(dataset_id)}")


def _target_free(target: str, force: bool, verb: str) -> bool:
    """Whether ``target`` may be written: removed first with ``--force``; an already built one
    is kept (and said so) without it."""
    if force and dataset_dir(target).exists():
        shutil.rmtree(dataset_dir(target))
    elif is_built(target):
        print(f"{target}: already built (use --force to {verb})")
        return False
    return True


def cmd_build(args: argparse.Namespace) -> None:

    time_limit = args.episode_steps * AGENT_STEP_S if args.episode_steps else None
    for dataset_id in _ids(args.dataset_id):
        resized = args.transitions is not None or time_limit is not None
        target = args.target_id or (
            variant_id(dataset_id, args.transitions, time_limit) if resized else dataset_id
        )
        if args.observation == "state" and not args.target_id:
            target = state_dataset_id(target)
        if not _target_free(target, args.force, "rebuild"):
            continue
        dataset = build_dataset(
            dataset_id,
            transitions=args.transitions,
            time_limit_s=time_limit,
            workers=args.workers,
            target_id=args.target_id,
            progress=not args.quiet,
            observation=args.observation,
        )
        stats = dataset.storage.metadata.get("vorb_build", {}).get("stats", {})
        print(f"{dataset.id}: {stats}")


def cmd_verify(args: argparse.Namespace) -> int:

    report = verify_dataset(args.dataset_id, sample=args.sample)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_download(args: argparse.Namespace) -> None:
    from benchmark.datasets.remote import download  # late: minari, for this subcommand only

    download(args.dataset_id, force=args.force)


def cmd_publish(args: argparse.Namespace) -> None:
    from benchmark.datasets.remote import publish

    if not is_built(args.dataset_id):
        raise DatasetError(f"{args.dataset_id} is not built locally; build or download it first")
    publish(args.dataset_id, token=args.token)


def cmd_card(args: argparse.Namespace) -> None:

    print(write_card(args.dataset_id, args.out))


def cmd_export(args: argparse.Namespace) -> None:

    destination = args.target_id if args.format == "minari-hdf5" else args.out
    wrong = args.out if args.format == "minari-hdf5" else args.target_id
    if wrong is not None:
        option = "--out" if args.format == "minari-hdf5" else "--target-id"
        raise ValueError(f"{option} does not apply to --format {args.format}")
    path = export_dataset(
        args.dataset_id, args.format, destination, force=args.force, progress=not args.quiet
    )
    print(f"{args.dataset_id} -> {args.format}: {path} ({folder_bytes(path) / 1e6:,.1f} MB)")


def cmd_rerender(args: argparse.Namespace) -> None:

    variant, seed = resolve(args.variant, args.seed)
    target = args.target_id or variant_dataset_id(args.dataset_id, variant, seed)
    if not _target_free(target, args.force, "re-render"):
        return
    dataset = rerender_dataset(
        args.dataset_id,
        args.variant,
        seed=seed,
        workers=args.workers,
        target_id=target,
        progress=not args.quiet,
    )
    stats = dataset.storage.metadata.get("vorb_build", {}).get("stats", {})
    print(f"{dataset.id}: {stats}")


def cmd_train_behaviour(args: argparse.Namespace) -> None:

    sac_fields = settable_fields(type(behaviour_sac_config()))
    changes = {}
    for item in args.set:
        name, _, text = item.partition("=")
        if name not in sac_fields:
            raise OverrideError(
                f"--set: unknown SAC field {name!r}; valid fields: {', '.join(sorted(sac_fields))}"
            )
        changes[name] = parse_value(name, text, sac_fields[name])
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(BehaviourTraining)}
    plan = BehaviourTraining(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    )
    written = [args.out / name for name in POLICY_FILES if (args.out / name).exists()]
    if written and not args.force:
        raise FileExistsError(
            f"{args.out} already holds {', '.join(p.name for p in written)} (the datasets' recipes "
            "are made from the committed ones): choose another --out, or --force to replace them"
        )
    command = shlex.join(["python", "-m", "benchmark.datasets", *args.argv])
    trainer = BehaviourTrainer(behaviour_sac_config(**changes), plan, args.seed, args.out, command)
    summary = trainer.run()
    print(json.dumps({k: v.get("mean") for k, v in summary.items() if "mean" in v}))


def cmd_policy_return(args: argparse.Namespace) -> None:

    command = shlex.join(["python", "-m", "benchmark.datasets", *args.argv])
    result = record_deterministic_return(args.name, command)
    print(
        f"{args.name}: deterministic {result['mean']:.1f} ± {result['std']:.1f} "
        f"over {result['episodes']} episodes (written to returns.json)"
    )


def _train_behaviour_parser(commands: argparse._SubParsersAction) -> None:
    """Options generated from :class:`BehaviourTraining`, so ``--help`` documents them."""

    train = commands.add_parser(
        "train-behaviour", help="train the state SAC and save medium/expert behaviour policies"
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=POLICY_DIR, help="default: %(default)s")
    for field in dataclasses.fields(BehaviourTraining):
        flag = "--" + field.name.replace("_", "-")
        if isinstance(field.default, tuple):
            train.add_argument(
                flag, type=float, nargs=2, default=field.default, metavar=("LOW", "HIGH")
            )
        else:
            train.add_argument(flag, type=type(field.default), default=field.default)
    train.add_argument("--force", action="store_true", help="replace policies already in --out")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a field of the state SAC config (default: the committed policies' values)",
    )
    train.set_defaults(run=cmd_train_behaviour)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m benchmark.datasets", description=__doc__)
    commands = main.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="recipes and which are built").set_defaults(run=cmd_list)
    build = commands.add_parser("build", help="build a dataset from its recipe (or `all`)")
    build.add_argument("dataset_id")
    build.add_argument("--workers", type=int, default=None, help="processes (default: cores)")
    build.add_argument("--transitions", type=int, default=None, help="a smaller variant")
    build.add_argument("--episode-steps", type=int, default=None, help="shorter episodes")
    build.add_argument("--target-id", default=None, help="id of a resized variant")
    build.add_argument("--force", action="store_true", help="delete and rebuild")
    build.add_argument(
        "--observation",
        choices=("pixels", "state"),
        default="pixels",
        help="state: the same episodes without rendering, under vorb-state/... (the state track)",
    )
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(run=cmd_build)
    verify = commands.add_parser("verify", help="check digests and re-rendered frames")
    verify.add_argument("dataset_id")
    verify.add_argument("--sample", type=int, default=16, help="frames to re-render")
    verify.set_defaults(run=cmd_verify)
    download = commands.add_parser("download", help="download from MINARI_REMOTE")
    download.add_argument("dataset_id")
    download.add_argument("--force", action="store_true")
    download.set_defaults(run=cmd_download)
    publish = commands.add_parser("publish", help="upload to MINARI_REMOTE")
    publish.add_argument("dataset_id")
    publish.add_argument("--token", default=None, help="remote token (default: MINARI_TOKEN)")
    publish.set_defaults(run=cmd_publish)
    card = commands.add_parser("card", help="markdown card + PNG frame strip")
    card.add_argument("dataset_id")
    card.add_argument("--out", type=Path, default=None, help="folder (default: the dataset's)")
    card.set_defaults(run=cmd_card)
    from benchmark.datasets.export import FORMATS  # light: heavy readers import lazily

    export = commands.add_parser("export", help="copy for torchrl, V-D4RL or d3rlpy (lossless)")
    export.add_argument("dataset_id")
    export.add_argument(
        "--format",
        required=True,
        choices=list(FORMATS),
        help="; ".join(f"{f.name}: for {f.reader}" for f in FORMATS.values()),
    )
    export.add_argument("--target-id", default=None, help="minari-hdf5: id of the copy")
    export.add_argument("--out", type=Path, default=None, help="vd4rl / d3rlpy: destination folder")
    export.add_argument("--force", action="store_true", help="replace an existing export")
    export.add_argument("--quiet", action="store_true", help="no progress bar")
    export.set_defaults(run=cmd_export)
    _rerender_parser(commands)
    _train_behaviour_parser(commands)
    policy_return = commands.add_parser(
        "policy-return",
        help="measure a behaviour policy's deterministic return (20 episodes, the confirmation "
        "seeds) and record it in returns.json beside its sampled one",
    )
    policy_return.add_argument("name", help="a policy of datasets/policies: medium or expert")
    policy_return.set_defaults(run=cmd_policy_return)
    return main


def _rerender_parser(commands: argparse._SubParsersAction) -> None:
    rerender = commands.add_parser(
        "rerender", help="re-render a dataset's stored physics under a visual variant"
    )
    rerender.add_argument("dataset_id")
    rerender.add_argument("--variant", required=True, help=f"one of: {', '.join(VARIANTS)}")
    rerender.add_argument("--seed", type=int, default=0, help="draws colours / background")
    rerender.add_argument("--workers", type=int, default=None, help="processes (default: cores)")
    rerender.add_argument("--target-id", default=None, help="default: <name>-<variant>-v<n>")
    rerender.add_argument("--force", action="store_true", help="delete and re-render")
    rerender.add_argument("--quiet", action="store_true", help="no progress bar")
    rerender.set_defaults(run=cmd_rerender)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by train-behaviour
    warnings.filterwarnings("ignore", message=".*author_email.*")
    try:
        return int(args.run(args) or 0)
    except (RecipeError, DatasetError, ValueError, FileNotFoundError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
