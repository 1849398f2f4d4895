"""``python -m benchmark.report``: leaderboard (Markdown + CSV) and figures from a results folder.

Statistics follow Agarwal et al. (2021) through ``rliable``: per baseline and dataset, the final
and the best normalised score as mean ± std over seeds and as the interquartile mean (IQM) with a
95% stratified bootstrap interval; an aggregate over datasets; the probability that CQL-CURL
improves on offline SAC-CURL. Score arrays are ``(num_runs x num_tasks)``: runs are seeds,
tasks are datasets. Bootstraps are seeded, so a report is reproducible.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.atomic import atomic_write_text
from benchmark.harness import profiles
from benchmark.harness.profiles import FULL_EPISODE_S
from benchmark.harness.results import METRICS_KEY_DTYPES, Selection, select_cells, sort_metrics
from benchmark.report import gap
from benchmark.report.select import (  # noqa: F401  (re-exported)
    PROFILE_ORDER,
    algo_order,
    choose_profile,
    existing_folders,
)
from benchmark.report.stats import (  # noqa: F401  (re-exported: the report's statistics live there)
    BOOTSTRAP_REPS,
    BOOTSTRAP_SEED,
    Interval,
    algo_datasets,
    dataset_order,
    iqm_intervals,
    mean_std,
    probability_of_improvement,
    score_matrix,
    seeded_bootstrap,
)
from benchmark.report.variants import report_section

AGGREGATE = "aggregate"
IMPROVEMENT_PAIR = ("cql-curl", "sac-curl-offline")  # the question of the original CQL-CURL work
STATE_IMPROVEMENT_PAIR = ("cql-state", "sac-state-offline")  # the same question on states
EXIT_SKIPPED = 1  # the report was written, but some cells' files could not be read
EXIT_USAGE = 2  # nothing written: bad arguments, no results, or conflicting copies of a cell


# -- from the results table to score arrays ----------------------------------------------------
def per_run_scores(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (algo, dataset, seed): the final (last evaluation) and best normalised score,
    and the final overestimation ``q_gap``: the critic's Q(s0, pi(s0)) minus the discounted
    return obtained, at the last evaluation (NaN without a critic)."""
    ordered = table.sort_values("update")
    groups = ordered.groupby(["algo", "dataset", "seed"], sort=True)
    grouped = groups["normalized_score"]
    frame = pd.DataFrame({"final": grouped.last(), "best": grouped.max()})
    frame["updates"] = groups["update"].last()  # what the final score was reached after
    frame["obs"] = groups["observation"].last() if "observation" in table else "pixels"
    if {"q_estimate", "discounted_return"} <= set(table.columns):
        last = groups.tail(1).set_index(["algo", "dataset", "seed"])
        frame["q_gap"] = last["q_estimate"] - last["discounted_return"]
    else:
        frame["q_gap"] = np.nan
    return frame.reset_index()


# -- the leaderboard ---------------------------------------------------------------------------
def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (baseline, dataset) rows, then one aggregate row per baseline over its datasets."""
    rows = []
    for algo in algo_order(runs):
        datasets = algo_datasets(runs, algo)
        for dataset in [*datasets, AGGREGATE]:
            tasks = datasets if dataset == AGGREGATE else [dataset]
            rows.append(_leaderboard_row(runs, algo, dataset, tasks))
    return pd.DataFrame(rows)


def _leaderboard_row(runs: pd.DataFrame, algo: str, dataset: str, tasks: list[str]) -> dict:
    mine = runs[(runs["algo"] == algo) & runs["dataset"].isin(tasks)]
    row: dict = {"algo": algo, "obs": mine["obs"].iloc[0], "dataset": dataset}
    # Final overestimation: mean over runs of Q(s0, pi(s0)) - discounted return (NaN: no critic).
    row["final_q_gap"] = float(mine["q_gap"].mean()) if mine["q_gap"].notna().any() else np.nan
    if "updates" in mine:  # a budget-limited baseline (CQL on states) says so in its row
        low, high = int(mine["updates"].min()), int(mine["updates"].max())
        row["updates"] = str(low) if low == high else f"{low}-{high}"
    for column in ("final", "best"):
        scores = score_matrix(runs, algo, column, tasks)
        interval = iqm_intervals({algo: scores})[algo]
        mean, std = mean_std(scores)
        row |= {
            "runs": scores.shape[0],
            f"{column}_mean": mean,
            f"{column}_std": std,
            f"{column}_iqm": interval.point,
            f"{column}_iqm_low": interval.low,
            f"{column}_iqm_high": interval.high,
        }
    return row


def improvement_pair(runs: pd.DataFrame) -> tuple[str, str]:
    """CQL against offline SAC: on pixels if both pixel baselines ran, else on states."""
    present = set(runs["algo"])
    for pair in (IMPROVEMENT_PAIR, STATE_IMPROVEMENT_PAIR):
        if set(pair) <= present:
            return pair
    return STATE_IMPROVEMENT_PAIR if present & set(STATE_IMPROVEMENT_PAIR) else IMPROVEMENT_PAIR


def improvement(runs: pd.DataFrame, pair: tuple[str, str] | None = None) -> dict | None:
    """P(pair[0] > pair[1]) on final scores over their shared datasets and seeds, if both ran
    (default pair: :func:`improvement_pair`)."""
    pair = pair or improvement_pair(runs)
    x_name, y_name = pair
    shared = dataset_order(set(algo_datasets(runs, x_name)) & set(algo_datasets(runs, y_name)))
    if not shared:
        return None
    seeds = set.intersection(*(set(runs.loc[runs["algo"] == a, "seed"]) for a in pair))
    common = runs[runs["seed"].isin(seeds)]
    x, y = (score_matrix(common, name, "final", shared) for name in pair)
    if x.size == 0 or x.shape != y.shape:
        return None
    updates = {name: sorted(set(runs.loc[runs["algo"] == name, "updates"])) for name in pair}
    return {
        "x": x_name,
        "y": y_name,
        "datasets": shared,
        "runs": x.shape[0],
        "updates": updates,
    } | {"interval": probability_of_improvement(x, y)}


# -- writing -----------------------------------------------------------------------------------
def markdown(
    board: pd.DataFrame,
    profile: profiles.Profile,
    meta: list[dict],
    pi: dict | None,
    figures: list[str],
    pair: tuple[str, str] = IMPROVEMENT_PAIR,
) -> str:
    lines = [f"# VORB leaderboard: profile `{profile.name}`", ""]
    if profile.is_demonstration:
        lines += [
            f"> **A demonstration, not results.** The `{profile.name}` profile trains for minutes "
            "on a CPU, on small datasets: it shows the pipeline end to end and learning at small "
            "scale (in `demo`, the state baselines on expert data learn to walk within minutes, "
            "offline SAC's Q estimates climb above the returns; pixel BC needs more updates than "
            "a demo gives it), not how "
            "the baselines compare; the pixel actor-critics are far from their budgets. "
            "Reference results: `results/reference-state/` (states, computed on a CPU) and "
            "`results/reference/` (pixels, the `full` profile on a GPU).",
            "",
        ]
    lines += [*_protocol_lines(profile, meta), "", "## Per dataset", ""]
    lines += _table(board[board["dataset"] != AGGREGATE])
    lines += ["", "## Aggregate over datasets", ""]
    lines += _table(board[board["dataset"] == AGGREGATE].drop(columns="dataset"))
    lines += ["", "## Probability of improvement", ""]
    if pi is None:
        lines.append(f"Not computed: {pair[0]} and {pair[1]} share no dataset.")
    else:
        budgets = "; ".join(
            f"{name} after {', '.join(map(str, n))} updates" for name, n in pi["updates"].items()
        )
        lines.append(
            f"P({pi['x']} > {pi['y']}) on final scores = {pi['interval']} "
            f"(95% stratified bootstrap; {pi['runs']} runs on {', '.join(pi['datasets'])}; "
            f"{budgets})."
        )
    lines += ["", "## Figures", ""]
    for name in figures:  # PNGs shown inline, PDFs linked
        stem, _, extension = name.rpartition(".")
        image = "!" if extension == "png" else ""
        lines.append(f"{image}[{stem} ({extension})](figures/{name})")
    return "\n".join(lines) + "\n"


def _override_lines(meta: list[dict]) -> list[str]:
    """The ``--set`` overrides the cells recorded, per baseline and dataset: the profile's line
    above describes the profile as registered, and a cell run with ``--set updates=...`` differs."""
    runs: dict[tuple[str, str, str], int] = {}
    for m in meta:
        recorded = m.get("setup", {}).get("overrides", {})
        changes = {**recorded.get("profile", {}), **recorded.get("config", {})}
        if changes and "cell" in m:
            text = ", ".join(f"{key}={value}" for key, value in sorted(changes.items()))
            key = (m["cell"]["algo"], m["cell"]["dataset"], text)
            runs[key] = runs.get(key, 0) + 1
    return [
        f"- Overrides recorded by `{algo}` on `{dataset}` ({count} run(s)): {text}."
        for (algo, dataset, text), count in sorted(runs.items())
    ]


def _protocol_lines(profile: profiles.Profile, meta: list[dict]) -> list[str]:
    setups = [m["setup"] for m in meta if "setup" in m]
    references = sorted(
        {
            f"{r['source']} (min {r['min_score']:.1f}, max {r['max_score']:.1f})"
            for r in (s["references"] for s in setups)
        }
    )
    evaluation = setups[0]["evaluation"] if setups else {}
    commits = sorted({str(m.get("git", {}).get("commit"))[:10] for m in meta})
    overrides = _override_lines(meta)
    # The profile line is the profile as registered; cells run with `--set` differ, so say so.
    registered = (
        " as registered (cells with `--set` overrides are listed next)" if overrides else ""
    )
    lines = [
        f"- Profile `{profile.name}`{registered}: {profile.describe()}.",
        *overrides,
        f"- Evaluation: {evaluation.get('episodes')} episode(s) of {evaluation.get('time_limit_s')} s "
        f"on reset seeds {evaluation.get('seeds')}, deterministic actions, a separate evaluation "
        "environment.",
        "- Normalised score: 100 x (return - ref_min) / (ref_max - ref_min) (Minari's "
        f"`get_normalized_score`); references: {'; '.join(references) or 'unknown'}.",
        "- Final = last evaluation; best = best evaluation of a run. mean ± std over seeds "
        f"(population std); IQM with a 95% stratified bootstrap interval (rliable, "
        f"{BOOTSTRAP_REPS} resamples, seed {BOOTSTRAP_SEED}).",
        f"- Code: commit(s) {', '.join(commits)}; per-run metadata in `runs/<profile>/...`.",
        _precision_line(meta),
        "- Final Q - return: the critic's estimate Q(s0, pi(s0)) at the start of each final "
        "evaluation episode minus the discounted return (0.99) the episode then obtained, mean "
        "over runs; positive = overestimation, negative = conservatism (SAC-family estimates "
        "are soft Q values: they include the entropy bonus).",
    ]
    if profile.episode_time_limit_s < FULL_EPISODE_S:
        lines.append(
            "- Episodes here are shorter than the 500 agent steps the references were measured "
            "on; the datasets' references are the full-episode ones scaled by the episode's "
            "fraction (see each reference's source in the runs' metadata)."
        )
    return lines


def _precision_line(meta: list[dict]) -> str:
    """Which baselines trained in bf16 autocast and which in fp32, and how that was chosen."""
    by_precision: dict[str, set[str]] = {}
    for m in meta:
        precision = m.get("setup", {}).get("precision", "unrecorded")
        by_precision.setdefault(precision, set()).add(m.get("cell", {}).get("algo", "?"))
    parts = [f"{p}: {', '.join(sorted(algos))}" for p, algos in sorted(by_precision.items())]
    reasons = sorted(
        {
            f"{c['requested']} -> {c['resolved']}, {c['reason']}"
            for m in meta
            if (c := m.get("precision"))
        }
    )
    chosen = f" (run precision: {'; '.join(reasons)})" if reasons else ""
    return f"- Precision (bf16 = bf16 autocast): {'; '.join(parts) or 'unknown'}{chosen}."


def _table(frame: pd.DataFrame) -> list[str]:
    has_dataset = "dataset" in frame.columns
    header = ["baseline", "obs", *(["dataset"] if has_dataset else []), "runs", "updates"]
    header += ["final (mean ± std)", "final IQM [95% CI]", "best (mean ± std)", "best IQM [95% CI]"]
    header += ["final Q - return"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.to_dict("records"):
        cells = [row["algo"], row["obs"], *([row["dataset"]] if has_dataset else [])]
        cells += [str(row["runs"]), str(row.get("updates", "-"))]
        for column in ("final", "best"):
            interval = Interval(
                row[f"{column}_iqm"], row[f"{column}_iqm_low"], row[f"{column}_iqm_high"]
            )
            cells += [f"{row[f'{column}_mean']:.1f} ± {row[f'{column}_std']:.1f}", str(interval)]
        gap = row.get("final_q_gap", np.nan)
        cells.append("-" if pd.isna(gap) else f"{gap:+.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_report(
    results: str | Path | Sequence[str | Path] | Selection,
    out: str | Path,
    profile_name: str | None = None,
    submissions: dict[Path, str] | None = None,
) -> Path:
    """Leaderboard and figures for one profile's results; returns the Markdown file.

    ``results``: one or more results folders (merged by :func:`benchmark.harness.results.select_cells`),
    or a selection already made. ``submissions``: which of those folders are contributed
    submissions (folder -> name, :mod:`benchmark.report.external`), so their rows are marked as such.
    """
    from benchmark.report import external, plots

    selection = results if isinstance(results, Selection) else select_cells(results)
    table = selection.evals
    name = choose_profile(table, profile_name)
    table = table[table["profile"] == name]
    runs = per_run_scores(table)
    board = leaderboard(runs)
    pair = improvement_pair(runs)
    pi = improvement(runs, pair)
    out = Path(out)
    metrics = sort_metrics(selection.table("metrics.csv", METRICS_KEY_DTYPES, profile=name))
    origins = external.origins(selection, name, submissions or {})
    shown = external.display_names(origins)  # "tiny-bc (external)" in tables and figures
    figures = plots.all_figures(
        *(external.relabel(f, shown) for f in (table, runs)), out / "figures",
        external.relabel(metrics, shown),
    )  # fmt: skip
    board.insert(1, "origin", board["algo"].map(lambda a: origins[a].label))
    atomic_write_text(out / "leaderboard.csv", board.to_csv(index=False))
    meta = [selection.meta[f] for f in selection.folders_of(name) if f in selection.meta]
    gaps = gap.gap_table(runs)
    figures += gap.figure(gaps, out / "figures")
    atomic_write_text(out / "pixel_state_gap.csv", gaps.to_csv(index=False))
    text = markdown(external.relabel(board, shown), profiles.get(name), meta, pi, figures, pair)
    text += external.provenance_section(origins)  # only when some rows are external
    text += "\n".join(gap.markdown(gaps)) + "\n"
    text += report_section(selection, name, table, out)  # only when runs have variants.csv
    atomic_write_text(out / "leaderboard.md", text)
    return out / "leaderboard.md"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.report", description=__doc__)
    parser.add_argument(
        "--results",
        nargs="+",
        default=["runs"],
        help="results folder(s) of benchmark.run or unpacked exports (benchmark.report.export_results); "
        "a cell found in several comes from the one evaluated furthest",
    )
    parser.add_argument("--out", default=None, help="output folder (default: <results>/report)")
    parser.add_argument("--profile", default=None, help="default: the largest profile present")
    parser.add_argument(
        "--submissions",
        nargs="+",
        default=[],
        help="contributed results beside the baselines: results/submissions (a folder of "
        "submissions) or single submission folders; refused if their protocol differs",
    )
    parser.add_argument(
        "--finished-only",
        action="store_true",
        help="only cells that finished (a 'done' marker): leaves out cells still training or "
        "stopped by a time budget, whose last evaluation is not their final one",
    )
    args = parser.parse_args(argv)
    out = args.out or str(Path(args.results[0]) / "report")
    try:
        selection, submissions = _with_submissions(args)
        path = write_report(selection, out, args.profile, submissions)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(path.read_text())
    print(f"written: {path}, {Path(out) / 'leaderboard.csv'}, {Path(out) / 'figures'}/")
    for problem in selection.problems:
        print(f"skipped, cannot read {problem}", file=sys.stderr)
    return EXIT_SKIPPED if selection.problems else 0


def _with_submissions(args: argparse.Namespace) -> tuple[Selection, dict[Path, str]]:
    """The results folders' cells, and the submissions' once each is checked against them."""
    from benchmark.report.external import check_submissions, find_submissions

    folders = existing_folders(args.results)
    finished = getattr(args, "finished_only", False)
    if not args.submissions:
        return select_cells(folders, finished_only=finished), {}
    submissions = find_submissions(args.submissions)
    reference = select_cells(folders, finished_only=finished)
    check_submissions(reference, submissions, choose_profile(reference.evals, args.profile))
    return select_cells([*folders, *submissions], finished_only=finished), submissions


if __name__ == "__main__":
    sys.exit(main())
