"""``python -m benchmark.compare --results USER --reference REF``: a user's baselines against a
reference run, with intervals, the probability of improvement and a verdict per dataset.

For each baseline of the user's results and each dataset it shares with the reference, on final
normalised scores (the last evaluation of each run): the IQM of each side with its 95%
stratified bootstrap interval (seeds are runs; the two sides may have different numbers of
seeds), the probability that the user's baseline improves on each reference baseline, P(X > Y)
with its 95% interval (Agarwal et al. 2021, rliable), and a verdict at 95%: ``better`` when the
interval of P(X > Y) lies above 1/2, ``worse`` below, ``within`` otherwise. The same over all
shared datasets together (the aggregate). Statistics: :mod:`benchmark.report.stats`.

The two sides of a pair must have run the same protocol: the profile, the updates and the
evaluation interval each cell ran, the evaluation episodes and their length, the datasets' ids and
sizes and the observation kind (when the results record one). A pair whose protocol differs is
left out and listed under the table, naming the field; when no pair is left it is refused (exit
2). ``--allow-mismatch`` compares anyway and says so above and below.

``--results`` and ``--reference`` are results folders, or folders holding export archives
(``results/reference-state/``), read in place.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.atomic import atomic_write_text
from benchmark.harness.results import Selection, select_cells
from benchmark.report.leaderboard import per_run_scores
from benchmark.report.protocol import (  # noqa: F401  (re-exported)
    PROTOCOL_FIELDS,
    ProtocolMismatch,
    cell_protocol,
    protocol_mismatches,
)
from benchmark.report.select import choose_profile, existing_folders
from benchmark.report.stats import (
    BOOTSTRAP_REPS,
    BOOTSTRAP_SEED,
    Interval,
    algo_datasets,
    dataset_order,
    iqm_intervals,
    probability_of_improvement,
    score_matrix,
    t_interval,
)

EXIT_USAGE = 2  # bad arguments, no shared datasets, or a protocol mismatch (nothing compared)
AGGREGATE = "aggregate"
CONFIDENCE_HALF = 0.5  # P(X > Y) = 1/2: neither side better


def metas_of(selection: Selection, profile: str, algo: str) -> list[dict[str, Any]]:
    """The ``meta.json`` records of one baseline's chosen cells of one profile."""
    records = [selection.meta.get(folder) for folder in selection.folders_of(profile)]
    return [m for m in records if m is not None and m["cell"]["algo"] == algo]


# -- statistics --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """One user baseline against one reference baseline on one dataset (or the aggregate)."""

    algo: str
    reference_algo: str
    dataset: str
    runs: int
    reference_runs: int
    score: Interval  # IQM of final scores, 95% bootstrap interval (or the seeds' range)
    reference_score: Interval
    improvement: Interval  # P(algo > reference_algo)
    mean: Interval  # mean of final scores, 95% Student-t interval over seeds
    reference_mean: Interval

    @property
    def verdict(self) -> str:
        """At 95%: the interval of P(X > Y) above 1/2, below it, or containing it."""
        if self.improvement.low > CONFIDENCE_HALF:
            return "better"
        if self.improvement.high < CONFIDENCE_HALF:
            return "worse"
        return "within"


def compare_pair(
    user_runs: pd.DataFrame, ref_runs: pd.DataFrame, algo: str, ref_algo: str
) -> list[Comparison]:
    """Per shared dataset and over all of them: intervals each side, P(improvement)."""
    shared = shared_datasets(user_runs, ref_runs, algo, ref_algo)
    if not shared:
        return []
    rows = []
    for dataset in [*shared, AGGREGATE]:
        tasks = shared if dataset == AGGREGATE else [dataset]
        x = score_matrix(user_runs, algo, "final", tasks)
        y = score_matrix(ref_runs, ref_algo, "final", tasks)
        if x.size == 0 or y.size == 0:
            continue  # no seed ran every dataset of the aggregate
        intervals = iqm_intervals({"x": x, "y": y})
        rows.append(
            Comparison(
                algo,
                ref_algo,
                dataset,
                x.shape[0],
                y.shape[0],
                intervals["x"],
                intervals["y"],
                probability_of_improvement(x, y),
                t_interval(x),
                t_interval(y),
            )
        )
    return rows


def shared_datasets(
    user_runs: pd.DataFrame, ref_runs: pd.DataFrame, algo: str, ref_algo: str
) -> list[str]:
    """The datasets both baselines ran, worst data to best."""
    return dataset_order(
        set(algo_datasets(user_runs, algo)) & set(algo_datasets(ref_runs, ref_algo))
    )


def comparison_table(comparisons: Sequence[Comparison]) -> str:
    header = ["baseline", "reference", "dataset", "runs", "IQM [95% bootstrap CI]"]
    header += ["mean [95% t-CI]", "reference runs", "reference IQM [95% bootstrap CI]"]
    header += ["reference mean [95% t-CI]", "P(improvement) [95% CI]", "verdict"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for c in comparisons:
        pi = f"{c.improvement.point:.2f} [{c.improvement.low:.2f}, {c.improvement.high:.2f}]"
        cells = [c.algo, c.reference_algo, c.dataset, str(c.runs), str(c.score), str(c.mean)]
        cells += [str(c.reference_runs), str(c.reference_score), str(c.reference_mean)]
        cells += [pi, f"**{c.verdict}**"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- the command -------------------------------------------------------------------------------
def _side(folders: Sequence[str], profile: str | None, what: str) -> tuple[Selection, str]:
    """A side's finished cells (a cell still training has no final score) and its profile."""
    selection = select_cells(existing_folders(folders), finished_only=True)
    if selection.problems:
        raise ValueError(f"{what}: cannot read {selection.problems[0]}")
    try:
        name = choose_profile(selection.evals, profile)
    except ValueError as error:
        raise ValueError(f"{what} ({', '.join(folders)}): {error}") from None
    return selection, name


def unfinished_cells(folders: Sequence[str], finished: Selection, what: str) -> list[str]:
    """The cells of ``folders`` left out because they have not finished, one line each."""
    every = select_cells(existing_folders(folders)).evals
    keys = ["profile", "algo", "dataset", "seed"]
    done = set(finished.evals[keys].drop_duplicates().itertuples(index=False))
    last = every.groupby(keys, sort=True)["update"].max()
    return [
        f"{what} {algo} {dataset} seed {seed} ({profile}): at update {update:,}"
        for (profile, algo, dataset, seed), update in last.items()
        if (profile, algo, dataset, seed) not in done
    ]


def _chosen(present: Sequence[str], wanted: str | None, what: str) -> list[str]:
    if wanted is None:
        return list(present)
    names = [name.strip() for name in wanted.split(",") if name.strip()]
    unknown = [name for name in names if name not in present]
    if unknown:
        raise ValueError(
            f"{what}: no results of {', '.join(unknown)}; present: {', '.join(present)}"
        )
    return names


def compare(
    args: argparse.Namespace,
) -> tuple[list[Comparison], list[str], list[str], list[str]]:
    """The comparisons the command prints, the protocol mismatches it compared anyway
    (``allow_mismatch``), the pairs it left out for theirs and the cells left out because they
    have not finished. Pairs whose protocols differ
    (another update budget, say) are left out and listed; :class:`ProtocolMismatch` is raised
    when that leaves nothing to compare, unless ``allow_mismatch``."""

    user, user_profile = _side(args.results, args.profile, "--results")
    ref, ref_profile = _side(args.reference, args.profile or user_profile, "--reference")
    user_runs = per_run_scores(user.evals[user.evals["profile"] == user_profile])
    ref_runs = per_run_scores(ref.evals[ref.evals["profile"] == ref_profile])
    algos = _chosen(sorted(user_runs["algo"].unique()), args.algos, "--algos")
    against = _chosen(sorted(ref_runs["algo"].unique()), args.against, "--against")
    problems: list[str] = []
    if user_profile != ref_profile:
        problems.append(f"profile differs: --results {user_profile!r}, --reference {ref_profile!r}")
    pairs, left_out = [], []
    for algo in algos:
        for ref_algo in against:
            if not shared_datasets(user_runs, ref_runs, algo, ref_algo):
                continue
            found = problems + protocol_mismatches(
                metas_of(user, user_profile, algo),
                metas_of(ref, ref_profile, ref_algo),
                (algo, f"reference {ref_algo}"),
            )
            if found and not args.allow_mismatch:
                left_out += [f"{algo} against {ref_algo}: {problem}" for problem in found]
                continue
            problems += [problem for problem in found if problem not in problems]
            pairs.append((algo, ref_algo))
    if not pairs and left_out:
        raise ProtocolMismatch(
            "protocol mismatch, nothing compared (--allow-mismatch compares anyway):\n  "
            + "\n  ".join(left_out)
        )
    unfinished = unfinished_cells(args.results, user, "--results")
    unfinished += unfinished_cells(args.reference, ref, "--reference")
    comparisons = [c for pair in pairs for c in compare_pair(user_runs, ref_runs, *pair)]
    if not comparisons:
        raise ValueError(
            f"nothing to compare: {', '.join(algos)} and the reference's {', '.join(against)} "
            "share no dataset"
        )
    return comparisons, problems, left_out, unfinished


def render(
    comparisons: Sequence[Comparison],
    problems: Sequence[str],
    args: Any,
    left_out: Sequence[str] = (),
    unfinished: Sequence[str] = (),
) -> str:
    warning = [
        "!! PROTOCOL MISMATCH: these numbers were not made with the same protocol "
        "(--allow-mismatch):",
        *(f"!!   {problem}" for problem in problems),
    ]
    lines = [*(warning if problems else []), ""]
    lines += [
        f"# {', '.join(args.results)} against the reference {', '.join(args.reference)}",
        "",
        "Final normalised scores (last evaluation of each finished run); every interval is over runs "
        "(seeds), each side's own. IQM with a 95% stratified bootstrap interval, marked `range` "
        "where it is exactly the lowest and highest seed (3 runs or fewer on one dataset); the "
        "mean with a 95% Student-t interval (in the aggregate, each seed's mean over the "
        "datasets is one run); P(improvement) = P(baseline > reference) with a 95% stratified "
        f"bootstrap interval (rliable, {BOOTSTRAP_REPS} resamples, seed {BOOTSTRAP_SEED}); "
        "verdict at 95%: better / worse when the interval of P(improvement) lies above / below "
        "0.5, within otherwise.",
        "",
        comparison_table(comparisons),
    ]
    if left_out:
        lines += [
            "",
            "Not compared, their protocols differ (--allow-mismatch compares anyway):",
            *(f"- {reason}" for reason in left_out),
        ]
    if unfinished:
        lines += ["", "Not compared, still training (no final score yet):"]
        lines += [f"- {reason}" for reason in unfinished]
    return "\n".join([*lines, *(["", *warning] if problems else [])]) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--results", nargs="+", required=True, help="the user's results folder(s)")
    parser.add_argument(
        "--reference",
        nargs="+",
        required=True,
        help="reference results folder(s), or folders of export archives read in place: "
        "results/reference-state, any run",
    )
    parser.add_argument("--algos", default=None, help="the user's baselines (default: all)")
    parser.add_argument("--against", default=None, help="reference baselines (default: all)")
    parser.add_argument("--profile", default=None, help="default: the largest profile present")
    parser.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="compare even when the protocols differ (reported above and below the table)",
    )
    parser.add_argument("--out", default=None, help="also write the comparison to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        comparisons, problems, left_out, unfinished = compare(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    text = render(comparisons, problems, args, left_out, unfinished)
    print(text, end="")
    if problems:
        print("\n".join(["PROTOCOL MISMATCH (--allow-mismatch):", *problems]), file=sys.stderr)
    if args.out:
        atomic_write_text(Path(args.out), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
