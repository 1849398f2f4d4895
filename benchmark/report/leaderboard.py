"""``python -m benchmark.report``: leaderboard (Markdown + CSV) and figures from a results folder.

Statistics follow Agarwal et al. (2021) through ``rliable``: per baseline and dataset, the final
and the best normalised score as mean ± std over seeds and as the interquartile mean (IQM) with a
95% stratified bootstrap interval; an aggregate over datasets; the probability that CQL-CURL
improves on offline SAC-CURL. Score arrays are ``(num_runs x num_tasks)``: runs are seeds,
tasks are datasets. Bootstraps are seeded, so a report is reproducible.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.atomic import atomic_write_text
from benchmark.harness import profiles
from benchmark.harness.profiles import FULL_EPISODE_S
from benchmark.harness.results import METRICS_KEY_DTYPES, Selection, select_cells, sort_metrics
from benchmark.report import divergence, evaluations, external, gap, plots
from benchmark.report.external import check_submissions, find_submissions
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
    aggregated_algos,
    aggregated_budget,
    algo_datasets,
    budgets,
    dataset_names,
    dataset_order,
    iqm_intervals,
    mean_std,
    probability_of_improvement,
    score_matrix,
    seeded_bootstrap,
    t_interval,
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
    frame["final_return"] = groups["return_mean"].last()  # the raw return the score scales
    frame["updates"] = groups["update"].last()  # what the final score was reached after
    frame["obs"] = groups["observation"].last() if "observation" in table else "pixels"
    if {"q_estimate", "discounted_return"} <= set(table.columns):
        last = groups.tail(1).set_index(["algo", "dataset", "seed"])
        frame["q_gap"] = last["q_estimate"] - last["discounted_return"]
    else:
        frame["q_gap"] = np.nan
    return frame.reset_index()


def with_divergence(
    runs: pd.DataFrame, table: pd.DataFrame, metrics: pd.DataFrame, meta: list[dict]
) -> pd.DataFrame:
    """``runs`` with each run's divergence (:mod:`benchmark.report.divergence`): whether its
    critic left the task's value range, when first, and the worst excursion."""
    configs = {
        (m["cell"]["algo"], m["cell"]["dataset"], int(m["cell"]["seed"])): m["setup"]["config"]
        for m in meta
        if "cell" in m and "config" in m.get("setup", {})
    }
    flags = divergence.divergence_table(table, metrics, configs)
    return runs.merge(flags, on=["algo", "dataset", "seed"], how="left")


# -- the leaderboard ---------------------------------------------------------------------------
VD4RL_SCALE = 10.0  # V-D4RL reports return / 10 (docs/sources.md, "V-D4RL")


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (baseline, dataset) rows, then one aggregate row per baseline over its datasets, for
    the baselines run on the same datasets at the same budget (:func:`aggregated_algos`)."""
    rows = []
    aggregated = set(aggregated_algos(runs))
    for algo in algo_order(runs):
        datasets = algo_datasets(runs, algo)
        for dataset in [*datasets, *([AGGREGATE] if algo in aggregated else [])]:
            tasks = datasets if dataset == AGGREGATE else [dataset]
            rows.append(_leaderboard_row(runs, algo, dataset, tasks))
    return pd.DataFrame(rows)


def _leaderboard_row(runs: pd.DataFrame, algo: str, dataset: str, tasks: list[str]) -> dict:
    mine = runs[(runs["algo"] == algo) & runs["dataset"].isin(tasks)]
    row: dict = {"algo": algo, "obs": mine["obs"].iloc[0], "dataset": dataset}
    row |= _q_gap(mine, aggregate=dataset == AGGREGATE)
    if "updates" in mine:  # a budget-limited baseline (CQL on states) says so in its row
        low, high = int(mine["updates"].min()), int(mine["updates"].max())
        row["updates"] = str(low) if low == high else f"{low}-{high}"
    for column in ("final", "best"):
        scores = score_matrix(runs, algo, column, tasks)
        interval = iqm_intervals({algo: scores})[algo]
        mean, std = mean_std(scores)
        t = t_interval(scores)
        row |= {
            "runs": scores.shape[0],
            f"{column}_mean": mean,
            f"{column}_std": std,
            f"{column}_t_low": t.low,
            f"{column}_t_high": t.high,
            f"{column}_iqm": interval.point,
            f"{column}_iqm_low": interval.low,
            f"{column}_iqm_high": interval.high,
            f"{column}_iqm_interval": interval.kind,
        }
    if "final_return" in runs:
        returns = score_matrix(runs, algo, "final_return", tasks)
        mean, std = mean_std(returns)
        row |= {
            "final_return_mean": mean,
            "final_return_std": std,
            "final_vd4rl_mean": mean / VD4RL_SCALE,
            "final_vd4rl_std": std / VD4RL_SCALE,
        }
    return row


def _q_gap(mine: pd.DataFrame, aggregate: bool) -> dict:
    """Final overestimation, mean over the runs whose critic stayed in range (NaN: no critic,
    or every run diverged; in an aggregate, any run: a mean over the datasets left would
    stand for the baseline), and how many of the runs diverged
    (:mod:`benchmark.report.divergence`)."""
    diverged = mine["diverged"].fillna(False).astype(bool) if "diverged" in mine else None
    kept = mine["q_gap"] if diverged is None else mine.loc[~diverged, "q_gap"]
    count = 0 if diverged is None else int(diverged.sum())
    usable = kept.notna().any() and not (aggregate and count)
    return {
        "final_q_gap": float(kept.mean()) if usable else np.nan,
        "diverged_runs": count,
        "diverged_of": len(mine),  # runs (cells) counted: seeds x datasets in an aggregate
    }


def improvement_pair(runs: pd.DataFrame) -> tuple[str, str]:
    """CQL against offline SAC: on pixels if both pixel baselines ran, else on states."""
    present = set(runs["algo"])
    for pair in (IMPROVEMENT_PAIR, STATE_IMPROVEMENT_PAIR):
        if set(pair) <= present:
            return pair
    return STATE_IMPROVEMENT_PAIR if present & set(STATE_IMPROVEMENT_PAIR) else IMPROVEMENT_PAIR


def not_comparable(runs: pd.DataFrame, pair: tuple[str, str]) -> str | None:
    """Why P(improvement) of ``pair`` is not computed, or None: both must have run, on the same
    datasets at the same budget."""
    ran = budgets(runs)
    missing = [name for name in pair if name not in ran]
    if missing:
        return f"{' and '.join(missing)} did not run"
    if ran[pair[0]] != ran[pair[1]]:
        return (
            f"{pair[0]} ran {ran[pair[0]]}, {pair[1]} ran {ran[pair[1]]}: P(improvement) "
            "compares baselines run on the same datasets at the same budget"
        )
    return None


def improvement(runs: pd.DataFrame, pair: tuple[str, str] | None = None) -> dict | None:
    """P(pair[0] > pair[1]) on final scores over their datasets and shared seeds, if both ran on
    the same datasets at the same budget (:func:`not_comparable`; default pair:
    :func:`improvement_pair`)."""
    pair = pair or improvement_pair(runs)
    x_name, y_name = pair
    if not_comparable(runs, pair):
        return None
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


def aggregated_improvements(runs: pd.DataFrame, skip: tuple[str, str]) -> list[dict]:
    """P(x > y) for every pair of the aggregated baselines (the same datasets at the same budget,
    :func:`aggregated_algos`) in the leaderboard's order, ``skip`` (the pair already reported)
    left out: on a table without the anchor pair (states: CQL ran one dataset at its own
    budget) the question a reader asks is still answered, e.g. whether TD3+BC beats BC."""
    chosen = set(aggregated_algos(runs))
    names = [name for name in algo_order(runs) if name in chosen]
    pairs = [pair for pair in itertools.combinations(names, 2) if set(pair) != set(skip)]
    return [pi for pair in pairs if (pi := improvement(runs, pair)) is not None]


# -- writing -----------------------------------------------------------------------------------
def markdown(
    board: pd.DataFrame,
    profile: profiles.Profile,
    meta: list[dict],
    pi: dict | None,
    figures: list[str],
    pair: tuple[str, str] = IMPROVEMENT_PAIR,
    runs: pd.DataFrame | None = None,
) -> str:
    """The leaderboard's Markdown; ``runs`` (:func:`per_run_scores`, with the divergence
    columns) adds why baselines are left out of the aggregate and which runs diverged."""
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
    lines += _aggregate_lines(board, runs)
    lines += ["", "## Probability of improvement", ""]
    if pi is None:
        reason = not_comparable(runs, pair) if runs is not None else None
        lines.append(f"Not computed: {reason or f'{pair[0]} and {pair[1]} share no dataset'}.")
    else:
        lines.append(_improvement_line(pi))
    lines += _aggregated_improvement_lines(runs, pair)
    lines += _divergence_lines(runs)
    lines += ["", "## Figures", ""]
    for name in figures:  # PNGs shown inline, PDFs linked
        stem, _, extension = name.rpartition(".")
        image = "!" if extension == "png" else ""
        lines.append(f"{image}[{stem} ({extension})](figures/{name})")
    return "\n".join(lines) + "\n"


def _improvement_line(pi: dict) -> str:
    budget_text = "; ".join(
        f"{name} after {', '.join(f'{u:,}' for u in n)} updates"
        for name, n in pi["updates"].items()
    )
    datasets = dataset_names(pi["datasets"])
    value = pi["interval"]  # two decimals: a probability near 0.5 needs them
    return (
        f"P({pi['x']} > {pi['y']}) on final scores = "
        f"{value.point:.2f} [{value.low:.2f}, {value.high:.2f}] "
        f"(95% stratified bootstrap; {pi['runs']} runs (shared seeds) on {datasets}; "
        f"{budget_text})."
    )


def _aggregated_improvement_lines(runs: pd.DataFrame | None, skip: tuple[str, str]) -> list[str]:
    found = [] if runs is None else aggregated_improvements(runs, skip)
    if not found:
        return []
    lines = ["", "Between the aggregated baselines (each pair over the seeds both ran):", ""]
    return lines + [f"- {_improvement_line(pi)}" for pi in found]


def _aggregate_lines(board: pd.DataFrame, runs: pd.DataFrame | None) -> list[str]:
    """The aggregate table, over the baselines run on the same datasets at the same budget,
    and a note per baseline left out, saying why."""
    rows = board[board["dataset"] == AGGREGATE].drop(columns="dataset")
    if runs is None:
        return _table(rows)
    chosen, ran = aggregated_budget(runs), budgets(runs)
    lines = [
        f"Over {chosen}: the baselines run on these datasets at this budget. The aggregate "
        "IQM, the performance profile and P(improvement) compare only such baselines.",
        "",
        *_table(rows),
    ]
    left_out = [algo for algo in algo_order(runs) if ran[algo] != chosen]
    if left_out:
        lines += ["", "Not aggregated (their rows per dataset are above):"]
        lines += [f"- `{algo}`: ran {ran[algo]}." for algo in left_out]
    return lines


def _divergence_lines(runs: pd.DataFrame | None) -> list[str]:
    """Which runs diverged, first and worst, per baseline and dataset."""
    if runs is None or "diverged" not in runs or not runs["diverged"].any():
        return []
    lines = [
        "",
        "## Divergence",
        "",
        "A run is `diverged` when its critic's Q estimate leaves the range of values the task "
        'allows or its critic loss exceeds what that range allows (docs/sources.md, "Value '
        'bounds": rewards in [0, 2] an agent step, discount 0.99: [0, 200], plus the logged '
        "entropy bonus for a soft critic). Its score stands; its Q is left out of the Q-gap means.",
        "",
        "| baseline | dataset | diverged | first out of range | worst |",
        "|---|---|---|---|---|",
    ]
    for (algo, dataset), mine in runs.groupby(["algo", "dataset"], sort=False):
        out = mine[mine["diverged"].astype(bool)]
        if out.empty:
            continue
        worst = out.loc[out["divergence_ratio"].idxmax()]
        lines.append(
            f"| {algo} | {dataset} | {len(out)}/{len(mine)} | update "
            f"{int(out['diverged_at'].min()):,} | {worst['divergence']} (seed {worst['seed']}) |"
        )
    return lines


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
        "- Final = last evaluation; best = best evaluation of a run. Every statistic is over "
        "runs (seeds): mean ± sample std over seeds (ddof 1) with a 95% Student-t interval on "
        "the mean; IQM with a 95% stratified bootstrap interval over seeds (rliable, "
        f"{BOOTSTRAP_REPS} resamples, seed {BOOTSTRAP_SEED}), marked `range` where it is "
        "exactly the lowest and highest seed (3 runs or fewer on one dataset). In the "
        "aggregate, each seed's mean over the datasets is one run. `leaderboard.csv` also has "
        "the raw final return and V-D4RL's scale (return / 10).",
        f"- Code: commit(s) {', '.join(commits)}; per-run metadata in `runs/<profile>/...`.",
        _precision_line(meta),
        "- Final Q - return: the critic's estimate Q(s0, pi(s0)) at the start of each final "
        "evaluation episode minus the discounted return (0.99) the episode then obtained, mean "
        "over the runs whose critic stayed in the task's value range; positive = the estimate "
        "above the return, negative = below (SAC-family estimates are soft Q values: they "
        "include the entropy bonus). Runs whose critic left that range are counted as "
        '`diverged (k/n)` instead (see "Divergence").',
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
    for column in ("final", "best"):
        header += [f"{column} mean ± std [95% t-CI]", f"{column} IQM [95% bootstrap CI]"]
    header += ["final Q - return"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.to_dict("records"):
        cells = [row["algo"], row["obs"], *([row["dataset"]] if has_dataset else [])]
        cells += [str(row["runs"]), str(row.get("updates", "-"))]
        for column in ("final", "best"):
            cells += [_mean_cell(row, column), str(_iqm(row, column))]
        cells.append(_q_gap_cell(row))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _mean_cell(row: dict, column: str) -> str:
    """``mean ± sample std [t interval]``; one run has neither."""
    if pd.isna(row[f"{column}_std"]):
        return f"{row[f'{column}_mean']:.1f} (one run)"
    t = Interval(row[f"{column}_mean"], row[f"{column}_t_low"], row[f"{column}_t_high"], "t")
    return f"{t.point:.1f} ± {row[f'{column}_std']:.1f} [{t.low:.1f}, {t.high:.1f}]"


def _iqm(row: dict, column: str) -> Interval:
    kind = row.get(f"{column}_iqm_interval", "bootstrap")
    return Interval(row[f"{column}_iqm"], row[f"{column}_iqm_low"], row[f"{column}_iqm_high"], kind)


def _q_gap_cell(row: dict) -> str:
    """The mean final Q - return over the runs in range; diverged runs are counted instead."""
    gap, diverged = row.get("final_q_gap", np.nan), row.get("diverged_runs", 0)
    parts = [] if pd.isna(gap) else [f"{gap:+.1f}"]
    if diverged:
        parts.append(f"diverged ({diverged}/{row.get('diverged_of', row['runs'])})")
    return "; ".join(parts) or "-"


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

    selection = results if isinstance(results, Selection) else select_cells(results)
    table = selection.evals
    name = choose_profile(table, profile_name)
    table = table[table["profile"] == name]
    metrics = sort_metrics(selection.table("metrics.csv", METRICS_KEY_DTYPES, profile=name))
    meta = [selection.meta[f] for f in selection.folders_of(name) if f in selection.meta]
    runs = with_divergence(per_run_scores(table), table, metrics, meta)
    board = leaderboard(runs)
    pair = improvement_pair(runs)
    pi = improvement(runs, pair)
    out = Path(out)
    origins = external.origins(selection, name, submissions or {})
    shown = external.display_names(origins)  # "tiny-bc (external)" in tables and figures
    figures = plots.all_figures(
        *(external.relabel(f, shown) for f in (table, runs)), out / "figures",
        external.relabel(metrics, shown),
    )  # fmt: skip
    board.insert(1, "origin", board["algo"].map(lambda a: origins[a].label))
    atomic_write_text(out / "leaderboard.csv", board.to_csv(index=False))
    gaps = gap.gap_table(runs)
    figures += gap.figure(gaps, out / "figures")
    atomic_write_text(out / "pixel_state_gap.csv", gaps.to_csv(index=False))
    text = markdown(
        external.relabel(board, shown), profiles.get(name), meta, pi, figures, pair,
        external.relabel(runs, shown),
    )  # fmt: skip
    text += external.provenance_section(origins)  # only when some rows are external
    text += "\n".join(gap.markdown(gaps)) + "\n"
    text += report_section(selection, name, table, out)  # only when runs have variants.csv
    atomic_write_text(out / "leaderboard.md", text)
    write_evaluations(*(external.relabel(f, shown) for f in (table, metrics, runs)), out, name)
    return out / "leaderboard.md"


def write_evaluations(
    table: pd.DataFrame, metrics: pd.DataFrame, runs: pd.DataFrame, out: Path, name: str
) -> None:
    """The learning curves' values (:mod:`benchmark.report.evaluations`): ``evaluations.csv``
    and ``evaluations.md``; ``runs`` carries each run's divergence."""
    curves = evaluations.evaluation_table(table, metrics, runs)
    atomic_write_text(out / "evaluations.csv", curves.to_csv(index=False))
    title = f"Every evaluation, profile `{name}`"
    atomic_write_text(out / "evaluations.md", evaluations.markdown(curves, title))


def write_matched_gap(
    selection: Selection, state_folders: list[str], out: Path, profile_name: str | None
) -> None:
    """Append the pixel-state gap at matched updates to the report in ``out``, and write its
    table (``pixel_state_gap_matched.csv``) and figure (``pixel_state_gap_matched``)."""
    name = choose_profile(selection.evals, profile_name)
    pixel_evals = selection.evals[selection.evals["profile"] == name]
    state_evals = select_cells(existing_folders(state_folders)).evals
    gaps = gap.matched_gap_table(pixel_evals, state_evals)
    if gaps.empty:
        raise ValueError(
            f"--state-reference {' '.join(state_folders)}: no state baseline of a pixel "
            "baseline's family was evaluated at an update count every pixel run of its family was"
        )
    atomic_write_text(out / "pixel_state_gap_matched.csv", gaps.to_csv(index=False))
    figures = gap.figure(gaps, out / "figures", name="pixel_state_gap_matched")
    section = gap.matched_markdown(gaps, state_folders)
    section += [
        f"![pixel-state gap at matched updates](figures/{f})" for f in figures if f.endswith(".png")
    ]
    text = (out / "leaderboard.md").read_text() + "\n".join(section) + "\n"
    atomic_write_text(out / "leaderboard.md", text)


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
    parser.add_argument(
        "--state-reference",
        nargs="+",
        default=[],
        help="state results (e.g. results/reference-state) to set against the pixel runs at "
        "the pixel runs' update count: the section 'Pixel-state gap at matched updates' and "
        "pixel_state_gap_matched.csv",
    )
    args = parser.parse_args(argv)
    out = args.out or str(Path(args.results[0]) / "report")
    try:
        selection, submissions = _with_submissions(args)
        path = write_report(selection, out, args.profile, submissions)
        if args.state_reference:
            write_matched_gap(selection, args.state_reference, Path(out), args.profile)
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
