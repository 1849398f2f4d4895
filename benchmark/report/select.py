"""Which results a report reads, and in what order: folders, profile, baselines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from benchmark.harness import registry
from benchmark.report.export_results import results_roots

PROFILE_ORDER = (
    "full",
    "pixels-cpu",
    "state",
    "demo",
    "smoke",
)  # the report defaults to the largest scale present


def algo_order(runs: pd.DataFrame) -> list[str]:
    """Registry order (the order of the original figure's legend), unknown names last."""

    present = set(runs["algo"])
    known = [name for name in registry.names() if name in present]
    return known + sorted(present - set(known))


def choose_profile(table: pd.DataFrame, requested: str | None) -> str:
    present = set(table["profile"])
    if requested is not None:
        if requested not in present:
            raise ValueError(
                f"no results of profile {requested!r}; present: {sorted(present) or 'none'}"
            )
        return requested
    for name in PROFILE_ORDER:
        if name in present:
            return name
    raise ValueError("no results found (run python -m benchmark.run first)")


def existing_folders(paths: Sequence[str]) -> list[Path]:
    """The results folders, each checked to exist (a typo would otherwise merge nothing); a
    folder holding export archives stands for them, unpacked
    (:func:`benchmark.report.export_results.results_roots`)."""
    missing = [path for path in paths if not Path(path).is_dir()]
    if missing:
        raise ValueError(f"no such results folder: {', '.join(missing)}")
    return [root for path in paths for root in results_roots(path)]
