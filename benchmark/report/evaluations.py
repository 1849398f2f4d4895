"""The learning curves as numbers: one row per (baseline, dataset, evaluation), averaged over runs.

The figures show the curves; this table gives the values behind them, with the training
metrics of the window before each evaluation beside its return, so a reader (or a README) can
quote a curve's point without reading cell files. Every statistic is over runs (seeds): the mean,
and the sample std (ddof 1) where there are two runs or more. ``episode std`` is the std over
one evaluation's episodes, averaged over runs: with one run it is the only spread there is.
Training metrics are the means over the updates since the previous evaluation, under the names
the baseline logs them (``docs/agent-contract.md``). A run whose critic has left the task's value
range (the leaderboard's "Divergence") counts in ``diverged`` from the first update it did, and
from there its Q estimate, batch Q (``q1``), critic and actor losses are left out of the means.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.harness.results import KEY_COLUMNS
from benchmark.report.select import algo_order
from benchmark.report.stats import dataset_order

CURVE_KEYS = ["algo", "dataset", "update"]
DIVERGING = ("q_estimate", "q_gap", "q1", "critic_loss", "actor_loss")  # what a diverged critic blows up


def evaluation_table(
    evals: pd.DataFrame, metrics: pd.DataFrame, divergence: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per (algo, dataset, update): the runs' mean return, its sample std over runs, the mean
    episode std, normalised score, Q estimate, discounted return, their difference, and the
    mean of every training metric logged for that evaluation's window. ``divergence``: one row
    per run with ``diverged_at`` (:func:`benchmark.report.divergence.divergence_table`)."""
    merged = _without_diverged_critics(_with_metrics(evals, metrics), divergence)
    metric_columns = [c for c in metrics.columns if c not in KEY_COLUMNS and c in merged.columns]
    table = (
        merged.groupby(CURVE_KEYS, sort=False)
        .agg(
            runs=("seed", "nunique"),
            diverged=("_diverged", "sum"),
            **{
                "return": ("return_mean", "mean"),
                "return std over runs": ("return_mean", lambda x: x.std(ddof=1)),
                "episode std": ("return_std", "mean"),
                "normalised": ("normalized_score", "mean"),
                "Q(s0, pi(s0))": ("q_estimate", "mean"),
                "discounted return": ("discounted_return", "mean"),
                "Q - return": ("q_gap", "mean"),
            },
            **{column: (column, "mean") for column in metric_columns},
        )
        .reset_index()
    )
    return _ordered(table)


def _without_diverged_critics(rows: pd.DataFrame, divergence: pd.DataFrame | None) -> pd.DataFrame:
    """Each evaluation row with ``q_gap``, and ``_diverged`` where its run's critic had left the
    value range by then; those rows' critic values become NaN (left out of the means)."""
    rows = rows.assign(q_gap=rows["q_estimate"] - rows["discounted_return"])
    if divergence is None or "diverged_at" not in divergence:
        return rows.assign(_diverged=False)
    keys = ["algo", "dataset", "seed"]
    rows = rows.merge(divergence[[*keys, "diverged_at"]], on=keys, how="left")
    diverged = (rows["update"] >= rows["diverged_at"]).fillna(False).astype(bool)
    present = [c for c in DIVERGING if c in rows.columns]
    rows.loc[diverged, present] = np.nan
    return rows.drop(columns="diverged_at").assign(_diverged=diverged)


def _with_metrics(evals: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    if metrics.empty:
        return evals
    extra = [c for c in metrics.columns if c not in KEY_COLUMNS]
    keys = ["algo", "dataset", "seed", "update"]
    return evals.merge(metrics[keys + extra], on=keys, how="left", suffixes=("", " (metric)"))


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    algos = {name: i for i, name in enumerate(algo_order(table))}
    datasets = {name: i for i, name in enumerate(dataset_order(table["dataset"]))}
    order = table.assign(
        _algo=table["algo"].map(algos), _dataset=table["dataset"].map(datasets)
    ).sort_values(["_algo", "_dataset", "update"])
    return order.drop(columns=["_algo", "_dataset"]).reset_index(drop=True)


def markdown(table: pd.DataFrame, title: str) -> str:
    """One Markdown table per (baseline, dataset), with the columns that baseline logs."""
    lines = [f"# {title}", "", (__doc__ or "").split("\n\n")[1].replace("\n", " ").replace("``", "`"), ""]
    for (algo, dataset), curve in table.groupby(["algo", "dataset"], sort=False):
        shown = curve.drop(columns=["algo", "dataset"]).dropna(axis=1, how="all")
        if not shown["diverged"].any():
            shown = shown.drop(columns="diverged")
        lines += [f"## {algo} on {dataset}", "", *_table(shown), ""]
    return "\n".join(lines)


def _table(frame: pd.DataFrame) -> list[str]:
    columns: Sequence[str] = list(frame.columns)
    rows = [" | ".join(_cell(row[c]) for c in columns) for _, row in frame.iterrows()]
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *(f"| {row} |" for row in rows),
    ]


def _cell(value: object) -> str:
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)
