"""Figures of a results table, each saved as PNG and PDF: learning curves, IQM intervals and a
performance profile. Plotting only: statistics come from :mod:`benchmark.report.stats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never needs a display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from rliable import library, plot_utils

from benchmark.atomic import atomic_write
from benchmark.harness.results import ONLINE
from benchmark.report.select import algo_order
from benchmark.report.stats import (
    aggregated_algos,
    algo_datasets,
    dataset_order,
    score_matrix,
    seeded_bootstrap,
)
from benchmark.report.stats import iqm_intervals as iqm

FORMATS = ("png", "pdf")
SCORE_LABEL = "normalised score"


def save(figure: plt.Figure, out_dir: Path, name: str) -> list[str]:
    """Write ``name.png`` and ``name.pdf`` atomically; returns the file names."""
    written = []
    for extension in FORMATS:
        path = out_dir / f"{name}.{extension}"
        atomic_write(path, lambda file, ext=extension: figure.savefig(file, format=ext, dpi=120))
        written.append(path.name)
    plt.close(figure)
    return written


def curves_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Offline rows per dataset; online rows repeated in every dataset's panel as the reference
    (the original CQL-CURL walker figure draws online SAC-CURL next to the offline agents)."""
    offline = table[table["dataset"] != ONLINE]
    online = table[table["dataset"] == ONLINE]
    datasets = dataset_order(offline["dataset"]) or [ONLINE]
    copies = [online.assign(dataset=dataset) for dataset in datasets]
    return pd.concat([offline, *copies], ignore_index=True)


def learning_curves(table: pd.DataFrame, out_dir: Path, x: str = "update") -> list[str]:
    """One panel per dataset: the mean over seeds as a line, the seeds' min-max range shaded.

    Colours follow one baseline order in every panel; online baselines are dashed.
    """

    frame = curves_frame(table)
    datasets = dataset_order(frame["dataset"])
    order = algo_order(frame)
    palette = _palette(order)
    online = set(table.loc[table["dataset"] == ONLINE, "algo"])
    dashes = {algo: (4, 2) if algo in online else "" for algo in order}
    figure, axes = plt.subplots(
        1, len(datasets), figsize=(5 * len(datasets), 3.8), squeeze=False, sharey=True
    )
    style = {"hue_order": order, "palette": palette, "style": "algo", "dashes": dashes}
    for index, (axis, dataset) in enumerate(zip(axes[0], datasets, strict=True)):
        panel = frame[frame["dataset"] == dataset]
        _curves(panel, x, axis, style, legend=index == len(datasets) - 1)
        axis.set(title=dataset.split("/")[-1], xlabel=x.replace("_", " "), ylabel=SCORE_LABEL)
        _zoom_on_short_runs(panel, x, axis, style)
    # Beside the panels, not on one: inside, it hid curves and the zoom insets.
    if axes[0][-1].get_legend() is not None:
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1.0))
    figure.tight_layout()
    return save(figure, out_dir, f"learning_curves_{x}")


SHORT_RUN = 0.25  # a baseline whose runs end before this fraction of a panel's x range


def _curves(panel: pd.DataFrame, x: str, axis: Axes, style: dict, legend: bool) -> None:
    sns.lineplot(
        data=panel,
        x=x,
        y="normalized_score",
        hue="algo",
        estimator="mean",
        errorbar=("pi", 100),  # the 0-100th percentile interval: min to max over seeds
        legend=legend,
        ax=axis,
        **style,
    )


def _zoom_on_short_runs(panel: pd.DataFrame, x: str, axis: Axes, style: dict) -> None:
    """An inset over the first updates where a baseline stopped early (a budget-limited CQL at
    7,500 of 100,000 updates would otherwise be a few pixels at the panel's left edge)."""
    ends = panel.groupby("algo")[x].max()
    short = ends[ends < SHORT_RUN * ends.max()]
    if short.empty:
        return
    limit = float(short.max())
    inset = axis.inset_axes((0.5, 0.1, 0.46, 0.42))
    _curves(panel[panel[x] <= limit], x, inset, style, legend=False)
    inset.set(xlim=(0, limit), xlabel="", ylabel="")
    inset.set_title(f"first {limit:,.0f} {x.replace('_', ' ')}s", fontsize=8)
    inset.tick_params(labelsize=7)


def iqm_intervals(intervals: dict[str, tuple[float, float, float]], out_dir: Path) -> list[str]:
    """Aggregate IQM per baseline as a point with its 95% interval (rliable's interval plot)."""
    names = list(intervals)
    points = np.array([intervals[n][0] for n in names])
    lows = np.array([intervals[n][1] for n in names])
    highs = np.array([intervals[n][2] for n in names])
    colours = sns.color_palette("colorblind", len(names))
    figure, axis = plt.subplots(figsize=(6, 0.6 * len(names) + 1.2))
    for row, colour in enumerate(colours):
        axis.barh(row, highs[row] - lows[row], left=lows[row], height=0.6, color=colour, alpha=0.7)
        axis.vlines(points[row], row - 0.3, row + 0.3, color="black", linewidth=2)
    axis.set(yticks=range(len(names)), yticklabels=names, xlabel=f"IQM {SCORE_LABEL} (95% CI)")
    axis.invert_yaxis()
    sns.despine(figure)
    figure.tight_layout()
    return save(figure, out_dir, "aggregate_iqm")


def performance_profile(score_dict: dict[str, np.ndarray], out_dir: Path) -> list[str]:
    """Fraction of runs scoring above tau, with bootstrap bands (rliable)."""

    everything = np.concatenate([scores.ravel() for scores in score_dict.values()])
    low, high = float(np.min(everything)), float(np.max(everything))
    taus = np.linspace(min(0.0, low), max(high, low + 1e-6), 81)

    with seeded_bootstrap():
        profiles, bands = library.create_performance_profile(score_dict, taus, reps=500)
    colours = dict(zip(score_dict, sns.color_palette("colorblind", len(score_dict)), strict=True))
    figure, axis = plt.subplots(figsize=(6.5, 4))
    plot_utils.plot_performance_profiles(
        profiles,
        taus,
        performance_profile_cis=bands,
        colors=colours,
        xlabel=rf"{SCORE_LABEL} ($\tau$)",
        ax=axis,
    )
    # Handles built here: the shaded bands would otherwise take the legend's entries.
    handles = [Line2D([0], [0], color=colour, label=name) for name, colour in colours.items()]
    axis.legend(handles=handles, loc="upper right", fontsize="small")
    figure.tight_layout()
    return save(figure, out_dir, "performance_profile")


# Metrics drawn in the training-curves figure, in this order, when some baseline returns them.
TRAINING_METRICS = (
    "critic_loss",
    "q1",
    "cql_gap1",
    "actor_loss",
    "alpha",
    "entropy",
    "curl_loss",
    "bc_loss",
    "alpha_prime",
)


def _palette(order: list[str]) -> dict[str, tuple[float, float, float]]:
    return dict(zip(order, sns.color_palette("colorblind", len(order)), strict=True))


def q_estimates(table: pd.DataFrame, out_dir: Path) -> list[str]:
    """Per dataset, each critic baseline's estimate Q(s0, pi(s0)) (solid) against the
    discounted return its policy then obtained (dashed), seeds' range shaded: overestimation
    shows as a solid line above its dashed one, conservatism as one below."""

    frame = curves_frame(table[table["q_estimate"].notna()])
    if frame.empty:
        return []
    long = frame.melt(
        id_vars=["algo", "dataset", "seed", "update"],
        value_vars=["q_estimate", "discounted_return"],
        var_name="quantity",
        value_name="value",
    )
    datasets, order = dataset_order(long["dataset"]), algo_order(frame)
    figure, axes = plt.subplots(
        1, len(datasets), figsize=(5 * len(datasets), 3.8), squeeze=False, sharey=True
    )
    for index, (axis, dataset) in enumerate(zip(axes[0], datasets, strict=True)):
        sns.lineplot(
            data=long[long["dataset"] == dataset],
            x="update",
            y="value",
            hue="algo",
            hue_order=order,
            palette=_palette(order),
            style="quantity",
            style_order=["q_estimate", "discounted_return"],
            estimator="mean",
            errorbar=("pi", 100),
            legend=index == 0,
            ax=axis,
        )
        axis.set(title=dataset.split("/")[-1], ylabel="Q(s0, pi(s0)) vs discounted return")
    if long["value"].abs().max() > 1e3:
        # Offline SAC's runaway estimates (10^7 and more) would flatten every other line:
        # symlog keeps the returns (tens to hundreds) readable beside them.
        for axis in axes[0]:
            axis.set_yscale("symlog", linthresh=10.0)
    figure.tight_layout()
    return save(figure, out_dir, "q_estimate_vs_return")


def training_metrics(metrics: pd.DataFrame, out_dir: Path) -> list[str]:
    """One row of panels per training metric, one column per dataset: the average over the
    updates between two evaluations, mean over seeds as a line, the seeds' range shaded."""

    names = [name for name in TRAINING_METRICS if name in metrics and metrics[name].notna().any()]
    if metrics.empty or not names:
        return []
    datasets, order = dataset_order(metrics["dataset"]), algo_order(metrics)
    figure, axes = plt.subplots(
        len(names),
        len(datasets),
        figsize=(4.5 * len(datasets), 2.6 * len(names)),
        squeeze=False,
        sharex="col",
        sharey="row",
    )
    for row, name in enumerate(names):
        for column, dataset in enumerate(datasets):
            axis = axes[row][column]
            sns.lineplot(
                data=metrics[(metrics["dataset"] == dataset) & metrics[name].notna()],
                x="update",
                y=name,
                hue="algo",
                hue_order=order,
                palette=_palette(order),
                estimator="mean",
                errorbar=("pi", 100),
                legend=row == 0 and column == 0,
                ax=axis,
            )
            axis.set(title=dataset.split("/")[-1] if row == 0 else "", ylabel=name)
    figure.tight_layout()
    return save(figure, out_dir, "training_metrics")


def all_figures(
    table: pd.DataFrame,
    runs: pd.DataFrame,
    out_dir: Path,
    metrics: pd.DataFrame | None = None,
    aggregated: Sequence[str] | None = None,
) -> list[str]:
    """Every figure of a report; ``runs`` is :func:`benchmark.report.leaderboard.per_run_scores` of ``table``,
    ``metrics`` the cells' training-metrics tables (figures without data are skipped). The
    aggregate IQM and the performance profile show only ``aggregated``, the baselines run on
    the same datasets at the same budget (default: :func:`benchmark.report.stats.aggregated_algos`)."""

    out_dir.mkdir(parents=True, exist_ok=True)
    sns.set_theme(style="whitegrid", context="paper")
    names = learning_curves(table, out_dir, "update")  # offline cells have no env steps
    finals = {
        algo: score_matrix(runs, algo, "final", algo_datasets(runs, algo))
        for algo in algo_order(runs)
        if algo in (aggregated if aggregated is not None else aggregated_algos(runs))
    }
    intervals = {k: (v.point, v.low, v.high) for k, v in iqm(finals).items()}
    names += iqm_intervals(intervals, out_dir)
    names += performance_profile(finals, out_dir)
    if "q_estimate" in table:
        names += q_estimates(table, out_dir)
    if metrics is not None:
        names += training_metrics(metrics, out_dir)
    return names
