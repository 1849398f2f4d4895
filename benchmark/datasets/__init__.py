"""VORB datasets: recipes (``datasets/*.toml``), build, verify, remotes and cards.

``python -m benchmark.datasets --help`` lists the commands. The Python API the harness uses:
:func:`build_dataset`, :func:`known_dataset_ids`, :func:`load_or_explain`.
"""

from benchmark.datasets.build import build_dataset
from benchmark.datasets.recipes import RecipeError, known_dataset_ids
from benchmark.datasets.store import DatasetError, load_or_explain

__all__ = ["DatasetError", "RecipeError", "build_dataset", "known_dataset_ids", "load_or_explain"]
