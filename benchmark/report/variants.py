"""The report's section on visual variants: the generalisation gap of each baseline.

Reads the per-cell ``variants.csv`` tables that ``--eval-variants`` writes
(:mod:`benchmark.harness.variant_eval`) and compares them with the final score on the training
variant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.atomic import atomic_write_text
from benchmark.data.variants import DEFAULT
from benchmark.harness.results import Selection, select_cells
from benchmark.harness.variant_eval import VARIANT_COLUMNS, VARIANTS_FILE


def load_variant_results(results: Any, profile: str | None = None) -> pd.DataFrame:
    """Every chosen cell's ``variants.csv`` (an empty table if none). ``results``: results
    folder(s) or a :class:`benchmark.harness.results.Selection`, whose chosen folders the tables follow
    (unreadable ones are added to its problems)."""
    selection = results if isinstance(results, Selection) else select_cells(results)
    table = selection.table(VARIANTS_FILE, VARIANT_COLUMNS, profile=profile)
    if table.empty:
        return pd.DataFrame(columns=list(VARIANT_COLUMNS)).astype(VARIANT_COLUMNS)
    return table.astype(VARIANT_COLUMNS)


def generalisation_table(evals: pd.DataFrame, variants: pd.DataFrame) -> pd.DataFrame:
    """Per baseline and evaluation variant: mean normalised score over runs on the variant, the
    same runs' final score on the training variant, and the gap (variant - training)."""
    final = evals.sort_values("update").groupby(["algo", "dataset", "seed"]).tail(1)
    keys = ["algo", "dataset", "seed", "update"]
    joined = variants.merge(final[[*keys, "normalized_score"]], on=keys, suffixes=("", "_training"))
    joined["gap"] = joined["normalized_score"] - joined["normalized_score_training"]
    grouped = joined.groupby(["algo", "variant"], sort=True)
    table = grouped.agg(
        runs=("seed", "size"),
        training=("normalized_score_training", "mean"),
        variant_score=("normalized_score", "mean"),
        variant_std=("normalized_score", "std"),
        gap=("gap", "mean"),
    )
    return table.reset_index()


def markdown_lines(table: pd.DataFrame, figures: list[str]) -> list[str]:
    lines = [
        "",
        "## Visual variants (generalisation gap)",
        "",
        "Each run's agent, after its final evaluation, on other visual variants of the walker "
        "(`--eval-variants`; same protocol). Gap = variant score - the same runs' final score "
        f"on the training variant (`{DEFAULT}`), normalised scores, mean over runs.",
        "",
        "| baseline | variant | runs | training | variant (mean ± std) | gap |",
        "|---|---|---|---|---|---|",
    ]
    for row in table.to_dict("records"):
        lines.append(
            f"| {row['algo']} | {row['variant']} | {row['runs']} | {row['training']:.1f} | "
            f"{row['variant_score']:.1f} ± {row['variant_std']:.1f} | {row['gap']:+.1f} |"
        )
    lines += [""] + [f"![generalisation gap](figures/{name})" for name in figures if ".png" in name]
    return lines


def gap_figure(table: pd.DataFrame, out_dir: Path) -> list[str]:
    """Grouped bars: per baseline, the training variant's score and each evaluation variant's."""
    # Late: matplotlib and seaborn load only when there is a figure to draw.
    from benchmark.report.plots import SCORE_LABEL, plt, save

    algos, labels = sorted(set(table["algo"])), sorted(set(table["variant"]))
    groups = [f"{DEFAULT} (training)", *labels]
    width = 0.8 / len(groups)
    figure, axis = plt.subplots(figsize=(max(4.0, 1.6 * len(algos) * len(groups) / 3), 3.2))
    for index, group in enumerate(groups):
        heights = []
        for algo in algos:
            rows = table[table["algo"] == algo]
            if index == 0:
                heights.append(rows["training"].mean())
            else:
                match = rows[rows["variant"] == group]["variant_score"]
                heights.append(match.iloc[0] if len(match) else np.nan)
        positions = np.arange(len(algos)) + (index - (len(groups) - 1) / 2) * width
        axis.bar(positions, heights, width, label=group)
    axis.set_xticks(np.arange(len(algos)), algos)
    axis.set_ylabel(SCORE_LABEL)
    axis.set_title("Score on each evaluation variant vs the training variant")
    axis.legend(fontsize=7)
    figure.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    return save(figure, out_dir, "variants_gap")


def report_section(results: Any, profile: str, evals: pd.DataFrame, out: Path) -> str:
    """The report's variants section and figure; empty when no run has a variants.csv."""
    variants = load_variant_results(results, profile)
    if variants.empty:
        return ""
    table = generalisation_table(evals, variants)
    atomic_write_text(out / "variants.csv", table.to_csv(index=False))
    figures = gap_figure(table, out / "figures")
    return "\n".join(markdown_lines(table, figures)) + "\n"
