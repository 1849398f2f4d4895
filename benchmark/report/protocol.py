"""Whether two sets of results ran one protocol: the fields compared, and the mismatches named.

Used by ``python -m benchmark.compare`` (user results against a reference) and by the report's
submissions (:mod:`benchmark.report.external`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Protocol fields, in the order they are checked and named.
PROTOCOL_FIELDS = (
    "profile",
    "updates",
    "eval_interval",
    "eval_episodes",
    "episode_time_limit_s",
    "dataset_transitions",
    "dataset_id",
    "obs_kind",
)


class ProtocolMismatch(ValueError):
    """Two sets of results were not made with the same protocol; the message names the field."""


# -- protocol ----------------------------------------------------------------------------------
def cell_protocol(meta: dict[str, Any], per_cell: bool = True) -> dict[str, Any]:
    """A cell's protocol from its ``meta.json``. ``per_cell``: the updates and evaluation
    interval this cell ran (a profile may give a baseline its own count); otherwise the
    profile's own. ``obs_kind`` only when the metadata records one."""
    setup, algo = meta["setup"], meta["cell"]["algo"]
    profile, evaluation = setup["profile"], setup["evaluation"]
    updates = profile["updates"]
    own = dict(profile.get("algo_updates") or {}).get(algo, updates) if per_cell else updates
    record = {
        "profile": profile["name"],
        "updates": own,
        "eval_interval": max(1, profile["eval_interval"] * own // updates),
        "eval_episodes": evaluation["episodes"],
        "episode_time_limit_s": evaluation["time_limit_s"],
        "dataset_transitions": profile.get("dataset_transitions"),
        "dataset_id": setup.get("dataset_id"),
    }
    obs_kind = setup.get("observation", setup.get("obs_kind", meta.get("obs_kind")))
    if obs_kind is not None:
        record["obs_kind"] = obs_kind
    return record


def protocol_mismatches(
    mine: Sequence[dict[str, Any]],
    theirs: Sequence[dict[str, Any]],
    labels: tuple[str, str],
    per_cell: bool = True,
) -> list[str]:
    """Every field whose values differ between two groups of cells' metadata, per dataset (the
    cells of each dataset against the other side's cells of the same dataset)."""
    problems = []
    for dataset in sorted({m["cell"]["dataset"] for m in mine}):
        own = [cell_protocol(m, per_cell) for m in mine if m["cell"]["dataset"] == dataset]
        other = [cell_protocol(m, per_cell) for m in theirs if m["cell"]["dataset"] == dataset]
        if not other:
            continue  # not shared: nothing is compared on it
        for name in PROTOCOL_FIELDS:
            a, b = _values(own, name), _values(other, name)
            if a != b:
                problems.append(
                    f"{name} differs on {dataset}: {labels[0]} {_show(a)}, {labels[1]} {_show(b)}"
                )
    return problems


def _values(records: list[dict[str, Any]], name: str) -> frozenset[str]:
    return frozenset(repr(record.get(name)) for record in records)


def _show(values: frozenset[str]) -> str:
    return " / ".join(sorted(values))
