"""The pixel-state gap: what learning from frames costs against the same trajectories' states.

Every VORB dataset stores frames and states of one set of episodes, so a baseline family run on
both observation kinds measures the representation gap directly (DMC-VB reports such a gap for
BC and TD3+BC on walker; V-D4RL does not). Per family and dataset: the state baseline's final
normalised score minus the pixel baseline's, mean over seeds, with a 95% percentile bootstrap
interval that resamples each side's seeds independently (unequal seed counts are fine); and per
family an aggregate over the datasets both ran (the mean of the per-dataset gaps).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.harness import registry
from benchmark.report.stats import dataset_order

GAP_REPS = 2_000
GAP_SEED = 0
AGGREGATE = "aggregate"


def family_pairs() -> dict[str, tuple[str, str]]:
    """family -> (pixel baseline, state baseline), for families registered on both kinds."""

    kinds: dict[str, dict[str, str]] = {}
    for spec in map(registry.get, registry.names()):
        kinds.setdefault(spec.family, {})[spec.obs_kind] = spec.name
    return {f: (k["pixels"], k["state"]) for f, k in kinds.items() if {"pixels", "state"} <= set(k)}


def _bootstrap_gap(
    pixel: list[np.ndarray], state: list[np.ndarray], rng: np.random.Generator
) -> tuple[float, float, float]:
    """Mean over datasets of (mean state - mean pixel), with its 95% bootstrap interval."""
    point = float(np.mean([s.mean() - p.mean() for p, s in zip(pixel, state, strict=True)]))
    draws = np.zeros(GAP_REPS)
    for p, s in zip(pixel, state, strict=True):
        draws += rng.choice(s, (GAP_REPS, len(s))).mean(1) - rng.choice(p, (GAP_REPS, len(p))).mean(
            1
        )
    draws /= len(pixel)
    low, high = np.percentile(draws, [2.5, 97.5])
    return point, float(low), float(high)


def gap_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows of family, dataset (or ``aggregate``), pixel and state baselines, their mean final
    scores and seed counts, and the gap (state - pixel) with its interval. ``runs`` is
    :func:`benchmark.report.leaderboard.per_run_scores`'s table (algo, dataset, seed, final)."""
    rng = np.random.default_rng(GAP_SEED)
    rows = []
    for family, (pixel_algo, state_algo) in family_pairs().items():
        finals = {
            algo: runs[runs["algo"] == algo].groupby("dataset")["final"].apply(np.asarray)
            for algo in (pixel_algo, state_algo)
        }
        shared = dataset_order(set(finals[pixel_algo].index) & set(finals[state_algo].index))
        for dataset in [*shared, AGGREGATE] if shared else []:
            tasks = shared if dataset == AGGREGATE else [dataset]
            pixel = [finals[pixel_algo][t] for t in tasks]
            state = [finals[state_algo][t] for t in tasks]
            head = {"family": family, "dataset": dataset}
            rows.append(head | _gap_row(pixel_algo, state_algo, pixel, state, rng))
    return pd.DataFrame(rows)


def _gap_row(
    pixel_algo: str,
    state_algo: str,
    pixel: list[np.ndarray],
    state: list[np.ndarray],
    rng: np.random.Generator,
) -> dict:
    """One row's baselines, mean scores, run counts and gap with its bootstrap interval."""
    point, low, high = _bootstrap_gap(pixel, state, rng)
    return {
        "pixel_algo": pixel_algo,
        "state_algo": state_algo,
        "pixel_final": float(np.mean([p.mean() for p in pixel])),
        "state_final": float(np.mean([s.mean() for s in state])),
        "pixel_runs": int(sum(len(p) for p in pixel)),
        "state_runs": int(sum(len(s) for s in state)),
        "gap": point,
        "gap_low": low,
        "gap_high": high,
    }


def markdown(gaps: pd.DataFrame) -> list[str]:
    """The report's section (empty when no family ran on both kinds)."""
    if gaps.empty:
        return []
    lines = [
        "",
        "## Pixel-state gap",
        "",
        "The same trajectories seen as frames or as proprioceptive states: final normalised "
        "score of the state baseline minus the pixel baseline's (mean over seeds; 95% "
        f"bootstrap interval over each side's seeds, {GAP_REPS} resamples, seed {GAP_SEED}); "
        "aggregate = mean of the per-dataset gaps.",
        "",
        "| family | dataset | pixels (runs) | state (runs) | gap [95% CI] |",
        "|---|---|---|---|---|",
    ]
    for row in gaps.to_dict("records"):
        lines.append(
            f"| {row['family']} | {row['dataset']} | {row['pixel_algo']} "
            f"{row['pixel_final']:.1f} ({row['pixel_runs']}) | {row['state_algo']} "
            f"{row['state_final']:.1f} ({row['state_runs']}) | "
            f"{row['gap']:+.1f} [{row['gap_low']:+.1f}, {row['gap_high']:+.1f}] |"
        )
    return lines


def figure(gaps: pd.DataFrame, out_dir: Path, name: str = "pixel_state_gap") -> list[str]:
    """``name`` (``pixel_state_gap``): the gap per family (rows) and dataset (points), with
    intervals."""
    if gaps.empty:
        return []
    # Late: matplotlib and seaborn load only when there is a figure to draw.
    import matplotlib.pyplot as plt

    from benchmark.report.plots import save

    datasets = list(dict.fromkeys(gaps["dataset"]))
    families = list(dict.fromkeys(gaps["family"]))
    figure, axis = plt.subplots(figsize=(7, 0.6 + 0.5 * len(families) * len(datasets) ** 0.5))
    offsets = np.linspace(-0.3, 0.3, len(datasets)) if len(datasets) > 1 else [0.0]
    for offset, dataset in zip(offsets, datasets, strict=True):
        mine = gaps[gaps["dataset"] == dataset]
        y = [families.index(f) + offset for f in mine["family"]]
        err = [mine["gap"] - mine["gap_low"], mine["gap_high"] - mine["gap"]]
        axis.errorbar(mine["gap"], y, xerr=err, fmt="o", capsize=3, label=dataset.split("/")[-1])
    axis.axvline(0.0, color="grey", lw=1, ls="--")
    axis.set_yticks(range(len(families)), families)
    axis.set_xlabel("state score - pixel score (normalised)")
    axis.set_title("Pixel-state gap (95% bootstrap intervals)")
    axis.legend(fontsize="small", loc="best")
    figure.tight_layout()
    return save(figure, out_dir, name)


# -- at matched updates: a pixel run's budget against the state runs' curves at that update ------
def scores_at(evals: pd.DataFrame, algo: str, update: int) -> pd.Series:
    """dataset -> the normalised scores of ``algo``'s runs (one per seed) at evaluation ``update``."""
    rows = evals[(evals["algo"] == algo) & (evals["update"] == update)]
    return rows.groupby("dataset")["normalized_score"].apply(np.asarray)


def matched_update(pixel: pd.DataFrame, state: pd.DataFrame) -> tuple[int, int] | None:
    """(the update both sides are read at, the pixel runs' final update): the largest update
    up to that final at which every pixel run and some state run were evaluated (the final
    itself unless the state runs stopped short, e.g. CQL on states at 7,500), or None."""
    final = int(pixel.groupby(["dataset", "seed"])["update"].max().min())
    runs = pixel.groupby(["dataset", "seed"]).ngroups
    every_run = pixel.groupby("update").size().loc[lambda n: n == runs].index
    common = {int(u) for u in every_run if u <= final} & {int(u) for u in state["update"]}
    return (max(common), final) if common else None


def matched_gap_table(pixel_evals: pd.DataFrame, state_evals: pd.DataFrame) -> pd.DataFrame:
    """The gap of :func:`gap_table` with both sides at the same update count
    (:func:`matched_update`), so a pixel budget is not set against 10x its updates. Rows as
    :func:`gap_table`'s, with ``updates`` and ``pixel_final_update``; a family with no such
    update is left out."""
    rng = np.random.default_rng(GAP_SEED)
    rows = []
    for family, (pixel_algo, state_algo) in family_pairs().items():
        pixel = pixel_evals[pixel_evals["algo"] == pixel_algo]
        state = state_evals[state_evals["algo"] == state_algo]
        matched = matched_update(pixel, state) if not pixel.empty else None
        if matched is None:
            continue
        update, pixel_final = matched
        finals = {
            pixel_algo: scores_at(pixel, pixel_algo, update),
            state_algo: scores_at(state, state_algo, update),
        }
        shared = dataset_order(set(finals[pixel_algo].index) & set(finals[state_algo].index))
        for dataset in [*shared, AGGREGATE] if len(shared) > 1 else shared:
            tasks = shared if dataset == AGGREGATE else [dataset]
            pixel_scores = [finals[pixel_algo][t] for t in tasks]
            state_scores = [finals[state_algo][t] for t in tasks]
            head = {"family": family, "dataset": dataset, "updates": update}
            row = _gap_row(pixel_algo, state_algo, pixel_scores, state_scores, rng)
            rows.append(head | row | {"pixel_final_update": pixel_final})
    return pd.DataFrame(rows)


def matched_markdown(gaps: pd.DataFrame, state_folders: list[str]) -> list[str]:
    """The report's section for :func:`matched_gap_table` (empty when no family matched)."""
    if gaps.empty:
        return []
    lines = [
        "",
        "## Pixel-state gap at matched updates",
        "",
        f"Each pixel run's final score against the state runs ({', '.join(state_folders)}) at "
        "the same update count, not at the state runs' own end (where the state runs stopped "
        "earlier, both sides at the largest update both evaluated: the rows marked *): state "
        f"score minus pixel score (mean over seeds; 95% bootstrap interval over each side's "
        f"seeds, {GAP_REPS} resamples, seed {GAP_SEED}).",
        "",
        "| family | dataset | updates | pixels (runs) | state (runs) | gap [95% CI] |",
        "|---|---|---|---|---|---|",
    ]

    def mark(row: dict[str, Any]) -> str:  # a row read before the pixel runs' final update
        later = row["pixel_final_update"] > row["updates"]
        return f"* (pixel final {row['pixel_final_update']:,})" if later else ""

    for row in gaps.to_dict("records"):
        lines.append(
            f"| {row['family']} | {row['dataset']} | {row['updates']:,}{mark(row)} | "
            f"{row['pixel_algo']} "
            f"{row['pixel_final']:.1f} ({row['pixel_runs']}) | {row['state_algo']} "
            f"{row['state_final']:.1f} ({row['state_runs']}) | "
            f"{row['gap']:+.1f} [{row['gap_low']:+.1f}, {row['gap_high']:+.1f}] |"
        )
    return lines
