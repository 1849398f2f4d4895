"""Shared fixtures: every test gets its own Minari root, so no test sees another's datasets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(autouse=True)
def minari_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``MINARI_DATASETS_PATH`` at a fresh temporary folder for each test."""
    root = tmp_path / "minari"
    root.mkdir()
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local launcher without worker processes (so monkeypatched clocks reach the cells):
    each cell runs in this process."""
    from benchmark.harness import runner

    def launch(tasks: list, workers: int, on_outcome: Any, **_: Any) -> list:
        outcomes = []
        for task in tasks:
            outcome = runner.run_cell(task)
            outcomes.append(outcome)
            on_outcome(outcome)
        return outcomes

    monkeypatch.setattr(runner, "run_local", launch)


@pytest.fixture
def restore_torch_threads() -> Any:
    """Cells set torch's thread count; put it back after the test."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
