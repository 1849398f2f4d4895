"""Helpers shared by the dataset tests: tiny real datasets under a module-owned Minari root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.datasets import build_dataset

REPO = Path(__file__).resolve().parents[1]
TINY_TIME_LIMIT_S = 1.0  # 20 agent steps an episode
RANDOM_ID = "vorb/walker-walk/random-v0"
TINY_RANDOM_ID = "vorb-test/walker-walk/random-tiny-v0"


def run_cli(*args: str, root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m benchmark.datasets ...`` in a fresh interpreter with its own Minari root."""
    environ = {**os.environ, "MINARI_DATASETS_PATH": str(root), **env}
    return subprocess.run(
        [sys.executable, "-m", "benchmark.datasets", *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def write_tiny_replay(path: Path, episodes: int = 2, length: int = 20, seed: int = 7) -> None:
    """A stand-in for ``medium_replay.npz``: reset seeds and random actions."""
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        episode_seeds=np.arange(100, 100 + episodes, dtype=np.int64),
        episode_lengths=np.full(episodes, length, dtype=np.int64),
        actions=rng.uniform(-1, 1, size=(episodes * length, 6)).astype(np.float32),
        rewards=np.zeros(episodes * length, dtype=np.float32),
    )


def fresh_copy(built_root: Path, minari_root: Path) -> Path:
    """A per-test copy of a module's built root in the test's own Minari root (tests may
    tamper with it)."""
    shutil.copytree(built_root, minari_root, dirs_exist_ok=True)
    return minari_root


def build_tiny_root(root: Path, transitions: int, target_id: str = TINY_RANDOM_ID) -> Path:
    """Build a tiny random dataset (20-step episodes, in-process) under its own Minari root."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        build_dataset(
            RANDOM_ID,
            transitions=transitions,
            time_limit_s=TINY_TIME_LIMIT_S,
            workers=1,
            target_id=target_id,
            progress=False,
        )
    return root
