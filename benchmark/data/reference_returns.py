"""The behaviour policies' measured returns (``datasets/policies/returns.json``): the normalised
scale's 0 (random) and 100 (expert) where a dataset carries no reference scores of its own.

It sits with the data, below both its readers: the datasets' builds write the scores into each
dataset (``benchmark/datasets/store.py``) and the harness falls back on the file for cells
without a dataset (``benchmark/harness/evaluation.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RETURNS_SOURCE = "datasets/policies/returns.json"  # repository-relative: results record it
RETURNS_FILE = Path(__file__).resolve().parents[2] / RETURNS_SOURCE


def load_reference_returns(path: str | Path = RETURNS_FILE) -> dict[str, Any]:
    """The measured returns of random / medium / expert (``datasets/policies/returns.json``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference returns not found: {path}")
    return json.loads(path.read_text())
