"""Statistics shared by the report, its figures and the compare command (rliable underneath).

Pure functions over ``(num_runs x num_tasks)`` score arrays: runs are seeds, tasks are datasets.
Bootstraps are seeded, so every number a report or a comparison prints is reproducible.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

BOOTSTRAP_REPS = 2_000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% bootstrap interval."""

    point: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.point:.1f} [{self.low:.1f}, {self.high:.1f}]"


def mean_std(scores: np.ndarray) -> tuple[float, float]:
    """Mean and population std (``np.std``, ddof 0) of all entries: one seed gives std 0."""
    return float(np.mean(scores)), float(np.std(scores))


@contextlib.contextmanager
def seeded_bootstrap() -> Iterator[None]:
    """rliable's stratified bootstrap draws from numpy's *global* RNG (``np.random.choice``),
    whatever ``random_state`` says: seed it for the computation and put it back afterwards."""
    saved = np.random.get_state()
    np.random.seed(BOOTSTRAP_SEED)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # arch: random_state deprecation
            yield
    finally:
        np.random.set_state(saved)


def iqm_intervals(score_dict: dict[str, np.ndarray]) -> dict[str, Interval]:
    """IQM of each ``(num_runs x num_tasks)`` array with a 95% stratified bootstrap interval."""
    from rliable import library, metrics

    with seeded_bootstrap():
        points, cis = library.get_interval_estimates(
            score_dict,
            lambda scores: np.array([metrics.aggregate_iqm(scores)]),
            reps=BOOTSTRAP_REPS,
            random_state=np.random.RandomState(BOOTSTRAP_SEED),
        )
    return {
        k: Interval(float(points[k][0]), float(cis[k][0, 0]), float(cis[k][1, 0])) for k in points
    }


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> Interval:
    """P(X > Y) averaged over tasks (ties count 1/2), with a 95% stratified bootstrap interval.

    Both arrays are ``(num_runs x num_tasks)`` over the same tasks in the same order; their
    numbers of runs may differ (each side is resampled on its own).
    """
    from rliable import library, metrics

    with seeded_bootstrap():
        points, cis = library.get_interval_estimates(
            {"pair": (scores_x, scores_y)},
            lambda x, y: np.array([metrics.probability_of_improvement(x, y)]),
            reps=BOOTSTRAP_REPS,
            random_state=np.random.RandomState(BOOTSTRAP_SEED),
        )
    return Interval(float(points["pair"][0]), float(cis["pair"][0, 0]), float(cis["pair"][1, 0]))


def score_matrix(runs: pd.DataFrame, algo: str, column: str, datasets: Sequence[str]) -> np.ndarray:
    """``(num_seeds x len(datasets))`` for one baseline; seeds missing a dataset are dropped."""
    mine = runs[runs["algo"] == algo].pivot(index="seed", columns="dataset", values=column)
    return mine.reindex(columns=list(datasets)).dropna().to_numpy(dtype=float)


# D4RL's order of dataset qualities (random, medium-replay, medium, medium-expert, expert), the
# order its tables and CORL's list them in: a reader scans a row from the worst data to the best.
QUALITY_ORDER = ("random", "medium-replay", "medium", "medium-expert", "expert")


def _dataset_key(dataset: str) -> tuple[int, str]:
    """``vorb/walker-walk/medium-v0`` -> its quality's rank; other names after, alphabetically."""
    quality = re.sub(r"-v\d+$", "", dataset.rsplit("/", 1)[-1])
    rank = QUALITY_ORDER.index(quality) if quality in QUALITY_ORDER else len(QUALITY_ORDER)
    return rank, dataset


def dataset_order(datasets: Iterable[str]) -> list[str]:
    """Datasets from the worst data to the best (``QUALITY_ORDER``), unknown qualities last."""
    return sorted(set(datasets), key=_dataset_key)


def algo_datasets(runs: pd.DataFrame, algo: str) -> list[str]:
    return dataset_order(runs.loc[runs["algo"] == algo, "dataset"])
