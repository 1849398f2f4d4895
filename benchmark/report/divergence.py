"""Divergence: a critic whose estimates leave the range the task allows.

Walker's reward is in [0, 1] per control step (dm_control's ``walker.walk``: a product of
``rewards.tolerance`` terms) and VORB's environment sums it over an action repeat of 2, so an
agent step earns r in [0, 2]. With discount gamma every policy's value lies in
[r_min / (1 - gamma), r_max / (1 - gamma)] = [0, 200] at gamma = 0.99. A soft critic (SAC's,
whose TD target includes -alpha log pi) estimates the value plus the discounted entropy bonus
alpha H per step; H is at most |A| log 2 (uniform on [-1, 1]^6: 6 log 2), and the runs log
their policy's entropy (``entropy``: the batch mean of -log pi) beside the temperature
(``alpha``), so the bound uses the logged entropy, clipped to [0, |A| log 2] for the upper
end and to at most 0 for the lower end:

    low  = (r_min + alpha x min(H, 0)) / (1 - gamma)
    high = (r_max + alpha x clip(H, 0, |A| log 2)) / (1 - gamma)

The worst-case entropy alone would not do: offline SAC on expert drives its temperature from
0.59 to 3e7, and (r_max + alpha x 6 log 2) / (1 - gamma) grows with it to 1e10, above the
critic's 2e9, while its logged entropy is -6 (its target, -|A|): its entropy bonus is negative
and its value at most 200. A critic whose TD error exceeds the whole range twice over has
diverged as well: the logged ``critic_loss`` sums the twin critics' squared TD errors, so its
bound is 2 x (2 x max(|low|, |high|))^2.

A run is ``diverged`` when any of its evaluations' Q(s0, pi(s0)) or any logged batch mean
``q1`` leaves [low, high], or its critic loss exceeds its bound (docs/sources.md, "Value
bounds"). Its score stands; its Q estimate is left out of the Q-gap means.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

REWARD_PER_AGENT_STEP = (0.0, 2.0)  # dm_control walker: [0, 1] a control step, action repeat 2
ACTION_DIM = 6  # walker's action space, [-1, 1]^6
MAX_ENTROPY = ACTION_DIM * math.log(2.0)  # a squashed policy's entropy is at most uniform's
TWIN_CRITICS = 2  # critic_loss sums the two critics' mean squared TD errors
DEFAULT_DISCOUNT = 0.99  # every VORB critic's (its config records it)
KEYS = ["algo", "dataset", "seed"]


def value_bounds(
    discount: float, alpha: Any = None, entropy: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of any policy's value: plain without ``alpha``; soft with it (the logged
    entropy where given, the worst case |A| log 2 where NaN)."""
    r_min, r_max = REWARD_PER_AGENT_STEP
    if alpha is None:
        return np.asarray(r_min / (1 - discount)), np.asarray(r_max / (1 - discount))
    alpha = np.asarray(alpha, dtype=float)
    logged = np.asarray(entropy if entropy is not None else np.nan, dtype=float)
    upper_h = np.where(np.isnan(logged), MAX_ENTROPY, np.clip(logged, 0.0, MAX_ENTROPY))
    lower_h = np.where(np.isnan(logged), -np.inf, np.minimum(logged, 0.0))
    low = (r_min + alpha * lower_h) / (1 - discount)
    return low, (r_max + alpha * upper_h) / (1 - discount)


def loss_bound(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The most the twin critics' summed squared TD error can be while both stay in range."""
    return TWIN_CRITICS * (2 * np.maximum(np.abs(low), np.abs(high))) ** 2


def is_soft(config: dict[str, Any], metrics: pd.DataFrame) -> bool:
    """A soft critic: it logs a temperature and its TD target carries the entropy bonus (CQL's
    ``backup_entropy=False`` target does not: its critic is bounded as a plain one)."""
    return "alpha" in metrics.columns and bool(config.get("backup_entropy", True))


def cell_divergence(
    evals: pd.DataFrame, metrics: pd.DataFrame | None, config: dict[str, Any]
) -> dict[str, Any]:
    """One cell: ``diverged`` and, if so, ``diverged_at`` (the first update out of range),
    ``divergence`` (the worst excursion, in words) and ``divergence_ratio`` (how far out it is:
    the value over the bound it crossed)."""
    metrics = metrics if metrics is not None else pd.DataFrame({"update": []})
    discount = float(config.get("discount", DEFAULT_DISCOUNT))
    soft = is_soft(config, metrics)
    checks = [
        *_metric_checks(metrics, discount, soft),
        *_eval_checks(evals, metrics, discount, soft),
    ]
    out = [c for c in checks if c["ratio"] > 1.0]
    if not out:
        return {
            "diverged": False,
            "diverged_at": np.nan,
            "divergence": "",
            "divergence_ratio": np.nan,
        }
    worst = max(out, key=lambda c: c["ratio"])
    return {
        "diverged": True,
        "diverged_at": min(c["update"] for c in out),
        "divergence": f"{worst['what']} {worst['value']:.3g} against a bound of "
        f"{worst['bound']:.3g} at update {worst['update']:,}",
        "divergence_ratio": worst["ratio"],  # how far out: value / bound above the range
    }


def _excursions(name: str, values: Any, low: Any, high: Any, updates: Any) -> list[dict]:
    """Each value outside [low, high], with how far: the value over the bound it crossed."""
    found = []
    for value, lo, hi, update in zip(values, low, high, updates, strict=True):
        if np.isnan(value):
            continue
        if value > hi:
            found.append(
                _excursion(f"{name} above range:", value, hi, update, value / max(hi, 1e-9))
            )
        elif value < lo:
            ratio = 1.0 + (lo - value) / max(abs(lo), abs(hi), 1e-9)
            found.append(_excursion(f"{name} below range:", value, lo, update, ratio))
    return found


def _excursion(what: str, value: float, bound: float, update: int, ratio: float) -> dict:
    return {"what": what, "value": float(value), "bound": float(bound), "update": int(update),
            "ratio": float(ratio)}  # fmt: skip


def _row_bounds(rows: pd.DataFrame, discount: float, soft: bool) -> tuple[np.ndarray, np.ndarray]:
    if not soft:
        low, high = value_bounds(discount)
        return np.full(len(rows), low), np.full(len(rows), high)
    entropy = rows.get("entropy")
    return value_bounds(discount, rows["alpha"], entropy)


def _metric_checks(metrics: pd.DataFrame, discount: float, soft: bool) -> list[dict]:
    if metrics.empty or not {"q1", "critic_loss"} & set(metrics.columns):
        return []
    low, high = _row_bounds(metrics, discount, soft)
    updates = metrics["update"].to_numpy()
    found = []
    if "q1" in metrics:
        found += _excursions("batch Q", metrics["q1"].to_numpy(float), low, high, updates)
    if "critic_loss" in metrics:
        losses, bound = metrics["critic_loss"].to_numpy(float), loss_bound(low, high)
        found += _excursions("critic loss", losses, np.full(len(losses), -np.inf), bound, updates)
    return found


def _eval_checks(
    evals: pd.DataFrame, metrics: pd.DataFrame, discount: float, soft: bool
) -> list[dict]:
    rows = evals.dropna(subset=["q_estimate"]).sort_values("update")
    if rows.empty:
        return []  # no critic
    if soft:
        if "alpha" not in metrics or metrics.empty:
            return []  # a soft critic without its temperature cannot be bounded
        logged = metrics.sort_values("update").drop(columns=["q1"], errors="ignore")
        rows = pd.merge_asof(rows, logged, on="update", direction="nearest", suffixes=("", "_m"))
    low, high = _row_bounds(rows, discount, soft)
    return _excursions("Q(s0, pi(s0))", rows["q_estimate"].to_numpy(float), low, high,
                       rows["update"].to_numpy())  # fmt: skip


def divergence_table(
    evals: pd.DataFrame, metrics: pd.DataFrame, configs: dict[tuple[str, str, int], dict]
) -> pd.DataFrame:
    """One row per run (algo, dataset, seed) of ``evals``: :func:`cell_divergence`'s columns.
    ``metrics``: the runs' training metrics (may be empty); ``configs``: each run's baseline
    config (its ``meta.json``), for the discount and whether its critic is soft."""
    by_run = dict(tuple(metrics.groupby(KEYS))) if not metrics.empty else {}
    rows = []
    for key, mine in evals.groupby(KEYS, sort=True):
        own = by_run.get(key)
        own = own.dropna(axis=1, how="all") if own is not None else None
        rows.append(
            dict(zip(KEYS, key, strict=True)) | cell_divergence(mine, own, configs.get(key, {}))
        )
    columns = [*KEYS, "diverged", "diverged_at", "divergence", "divergence_ratio"]
    return pd.DataFrame(rows, columns=columns)
