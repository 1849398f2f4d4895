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
from rliable import library, metrics

BOOTSTRAP_REPS = 2_000
BOOTSTRAP_SEED = 0


CONFIDENCE = 0.95  # every interval the report and compare print


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% interval; ``kind`` says what the interval is: ``bootstrap``
    (rliable's stratified bootstrap), ``range`` (a bootstrap interval that is exactly the runs'
    lowest and highest score, as it is at 3 runs or fewer on one dataset: resampling 3 values
    draws all three equal to the lowest with probability 1/27 > 2.5%), or ``t`` (Student-t on
    the mean over runs)."""

    point: float
    low: float
    high: float
    kind: str = "bootstrap"

    def __str__(self) -> str:
        if np.isnan(self.low):
            return f"{self.point:.1f} [-]"  # one run: no interval
        label = ", range" if self.kind == "range" else ""
        return f"{self.point:.1f}{label} [{self.low:.1f}, {self.high:.1f}]"


def run_means(scores: np.ndarray) -> np.ndarray:
    """Each run's mean score over the tasks (one value a seed); a ``(num_runs x 1)`` array's
    runs are its rows' single scores."""
    return np.asarray(scores, dtype=float).mean(axis=1)


def mean_std(scores: np.ndarray) -> tuple[float, float]:
    """Mean of all entries and the *sample* std over runs (ddof 1) of each run's mean over the
    tasks: over seeds, not over datasets. NaN with one run (a std needs two)."""
    per_run = run_means(scores)
    std = float(np.std(per_run, ddof=1)) if len(per_run) > 1 else float("nan")
    return float(np.mean(scores)), std


def t_interval(scores: np.ndarray) -> Interval:
    """The mean with its 95% Student-t interval over runs (each run's mean over the tasks):
    mean ± t(0.975, n - 1) x sample std / sqrt(n). Honest at 3-5 runs, where a bootstrap
    interval is the runs' range or close to it; NaN bounds with one run."""
    from scipy import stats

    per_run = run_means(scores)
    mean, n = float(np.mean(per_run)), len(per_run)
    if n < 2:
        return Interval(mean, float("nan"), float("nan"), "t")
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * np.std(per_run, ddof=1) / np.sqrt(n)
    return Interval(mean, mean - half, mean + half, "t")


def _labelled(interval: Interval, scores: np.ndarray) -> Interval:
    """``range`` where a one-task bootstrap interval is exactly the runs' lowest and highest."""
    scores = np.asarray(scores, dtype=float)
    if scores.shape[1] != 1 or len(scores) < 2:
        return interval
    bounds = (interval.low, interval.high)
    if np.allclose(bounds, (scores.min(), scores.max()), rtol=0, atol=1e-9):
        return Interval(interval.point, interval.low, interval.high, "range")
    return interval


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
    """IQM of each ``(num_runs x num_tasks)`` array with a 95% stratified bootstrap interval
    (labelled ``range`` where it is exactly the runs' range: :class:`Interval`)."""

    with seeded_bootstrap():
        points, cis = library.get_interval_estimates(
            score_dict,
            lambda scores: np.array([metrics.aggregate_iqm(scores)]),
            reps=BOOTSTRAP_REPS,
            random_state=np.random.RandomState(BOOTSTRAP_SEED),
        )
    return {
        k: _labelled(
            Interval(float(points[k][0]), float(cis[k][0, 0]), float(cis[k][1, 0])), score_dict[k]
        )
        for k in points
    }


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> Interval:
    """P(X > Y) averaged over tasks (ties count 1/2), with a 95% stratified bootstrap interval.

    Both arrays are ``(num_runs x num_tasks)`` over the same tasks in the same order; their
    numbers of runs may differ (each side is resampled on its own).
    """

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


def dataset_names(datasets: Iterable[str]) -> str:
    """``vorb/walker-walk/expert-v0, ...`` -> ``expert-v0, ...``: a list in one line of prose."""
    return ", ".join(d.rsplit("/", 1)[-1] for d in datasets)


def algo_datasets(runs: pd.DataFrame, algo: str) -> list[str]:
    return dataset_order(runs.loc[runs["algo"] == algo, "dataset"])


# -- which baselines may be aggregated together --------------------------------------------------
@dataclass(frozen=True)
class Budget:
    """What a baseline ran: its datasets (worst to best) and its update budget (the most updates
    any of its runs reached)."""

    datasets: tuple[str, ...]
    updates: int

    def __str__(self) -> str:
        names = dataset_names(self.datasets)
        return f"{len(self.datasets)} dataset(s) ({names}) at {self.updates:,} updates"


def budgets(runs: pd.DataFrame) -> dict[str, Budget]:
    """Each baseline's :class:`Budget` (``runs``: one row per run, with ``updates``)."""
    return {
        algo: Budget(tuple(algo_datasets(runs, algo)), int(mine["updates"].max()))
        for algo, mine in runs.groupby("algo", sort=True)
    }


def aggregated_budget(runs: pd.DataFrame) -> Budget | None:
    """The budget the aggregates are computed at: the one most baselines ran (ties: more
    datasets, then more updates). An IQM over datasets, a performance profile or a
    P(improvement) mixes only baselines run on the same datasets at the same budget: a baseline
    on one dataset at 7,500 updates beside others averaged over five at 100,000 says nothing
    about which is better."""
    counts: dict[Budget, int] = {}
    for budget in budgets(runs).values():
        counts[budget] = counts.get(budget, 0) + 1
    if not counts:
        return None
    return max(counts, key=lambda b: (counts[b], len(b.datasets), b.updates))


def aggregated_algos(runs: pd.DataFrame) -> list[str]:
    """The baselines run at :func:`aggregated_budget`; every other one is shown per dataset."""
    chosen = aggregated_budget(runs)
    return [algo for algo, budget in budgets(runs).items() if budget == chosen]
