"""Where datasets live on disk, their digests, and loading with a helpful error."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.reference_returns import RETURNS_FILE, RETURNS_SOURCE, load_reference_returns
from benchmark.datasets.recipes import DIGEST_KEYS, RecipeError, load_recipes

METADATA_KEY = "vorb_build"  # our build record inside Minari's metadata.json
STAGING_DIR = ".vorb-staging"  # hidden: Minari's listing skips dot folders
# dtypes the digests are taken in, so a digest does not depend on how a backend widened a column.
DIGEST_DTYPES = {
    "actions": np.float32,
    "rewards": np.float64,
    "terminations": np.uint8,
    "truncations": np.uint8,
    "state": np.float64,
    "physics": np.float64,
    "pixels": np.uint8,
}
# Walker's rewards go through ``np.exp`` (dm_control's gaussian tolerance), which NumPy computes
# with its own AVX-512 kernels where the CPU has them and with libm elsewhere; the two differ
# in the last bits (up to 4 ulp: numpy/numpy#23523, numpy/numpy#19478). So the float64
# rewards' sha256 depends on the CPU that built them (measured: the five recipes rebuilt on an
# AVX2-only EPYC match every digest but ``rewards``). Rounded to multiples of 2**-20 (~1e-6,
# far coarser than 4 ulp of a reward in [0, 1]) they digest alike on every CPU, unless a reward
# lies within a few ulp of a rounding midpoint: the build records how far the nearest one is.
REWARD_GRID = 2.0**-20


class DatasetError(RuntimeError):
    """A dataset is absent, incomplete or corrupt (the message says what to do)."""


def datasets_root() -> Path:
    """Minari's dataset root (``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``)."""
    from minari.storage.datasets_root_dir import get_dataset_path

    return get_dataset_path()


def dataset_dir(dataset_id: str) -> Path:
    return datasets_root() / dataset_id


def is_built(dataset_id: str) -> bool:
    return (dataset_dir(dataset_id) / "data" / "metadata.json").is_file()


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def rounded_rewards(rewards: np.ndarray) -> np.ndarray:
    """Rewards as integer multiples of :data:`REWARD_GRID` (round half to even)."""
    return np.rint(np.asarray(rewards, dtype=np.float64) / REWARD_GRID).astype(np.int64)


def rounding_margin(rewards: np.ndarray) -> float:
    """How far the reward nearest a rounding midpoint is from it: a CPU whose rewards differ by
    less than this gives the same ``rewards_rounded`` digest."""
    scaled = np.asarray(rewards, dtype=np.float64) / REWARD_GRID
    if scaled.size == 0:
        return REWARD_GRID / 2
    return float(np.min(np.abs(np.abs(scaled - np.floor(scaled)) - 0.5)) * REWARD_GRID)


def _digest_input(key: str, arrays: Mapping[str, np.ndarray | None]) -> np.ndarray | None:
    if key == "rewards_rounded":
        rewards = arrays.get("rewards")
        return None if rewards is None else rounded_rewards(rewards)
    value = arrays.get(key)
    return None if value is None else np.ascontiguousarray(value, dtype=DIGEST_DTYPES[key])


class Digester:
    """sha256 of each stored array, fed episode by episode in episode order, and the rewards'
    rounding margin (:func:`rounding_margin` over every episode)."""

    def __init__(self) -> None:
        self._hashes = {key: hashlib.sha256() for key in DIGEST_KEYS}
        self.rewards_margin = REWARD_GRID / 2

    def update(self, arrays: Mapping[str, np.ndarray | None]) -> None:
        """Feed one episode; an array that is absent (``pixels`` of a state-only dataset) is
        left out of the digests."""
        for key in list(self._hashes):
            data = _digest_input(key, arrays)
            if data is None:
                del self._hashes[key]
                continue
            self._hashes[key].update(np.ascontiguousarray(data).tobytes())
        if arrays.get("rewards") is not None:
            self.rewards_margin = min(self.rewards_margin, rounding_margin(arrays["rewards"]))

    def hexdigests(self) -> dict[str, str]:
        return {key: digest.hexdigest() for key, digest in self._hashes.items()}


def episode_arrays(episode: Any) -> dict[str, np.ndarray]:
    """A Minari ``EpisodeData`` as the flat arrays the digests are taken over."""
    obs = episode.observations
    return {
        "actions": episode.actions,
        "rewards": episode.rewards,
        "terminations": episode.terminations,
        "truncations": episode.truncations,
        "state": obs["state"],
        "physics": obs["physics"],
        "pixels": obs.get("pixels"),  # absent from a state-only dataset
    }


def digest_episodes(episodes: Iterable[Any]) -> dict[str, str]:
    digester = Digester()
    for episode in episodes:
        digester.update(episode_arrays(episode))
    return digester.hexdigests()


FULL_EPISODE_S = 25.0  # the published walker episode: 1,000 control steps, 500 agent steps


def reference_scores(time_limit_s: float = FULL_EPISODE_S) -> tuple[float, float, str]:
    """(random mean return, expert mean return, where they came from) for normalised scores.

    The measured references are returns of full 25 s episodes. A variant with shorter episodes
    (demo and test datasets) gets them scaled by ``time_limit_s / 25``: walker's reward accrues
    evenly over an episode (random ~0.08, expert ~1.8 per agent step), so a short episode's
    return is about that fraction of a full one, and normalised scores stay on a 0-100 scale.
    """
    fraction = time_limit_s / FULL_EPISODE_S
    if RETURNS_FILE.is_file():
        returns = load_reference_returns()
        low, high = float(returns["random"]["mean"]), float(returns["expert"]["mean"])
        source = RETURNS_SOURCE
    else:
        # Without measured returns, walker's return bounds (reward in [0, 1] per control step,
        # 1,000 steps): minari would otherwise estimate the minimum by rendering random episodes.
        low, high, source = 0.0, 1000.0, "walker return bounds (returns.json absent)"
    if fraction != 1.0:
        source += f", scaled by {fraction:g} for {time_limit_s:g} s episodes"
    return low * fraction, high * fraction, source


def build_command(dataset_id: str) -> str:
    return f"python -m benchmark.datasets build {dataset_id}"


def load_or_explain(dataset_id: str) -> Any:
    """Load a built dataset; if absent, raise :class:`DatasetError` saying how to get it."""
    import minari

    if not is_built(dataset_id):
        try:
            known = load_recipes()
        except RecipeError:
            known = {}
        hint = (
            f"build it with `{build_command(dataset_id)}` or download it with "
            f"`python -m benchmark.datasets download {dataset_id}` (remote: MINARI_REMOTE)"
            if dataset_id in known
            else f"it is not a recipe id either; recipe ids: {', '.join(known) or '(none)'}"
        )
        raise DatasetError(f"dataset {dataset_id!r} is not built under {datasets_root()}: {hint}")
    try:
        return minari.load_dataset(dataset_id)
    except Exception as error:  # any unreadable dataset: name it and the cause
        raise DatasetError(
            f"dataset {dataset_id!r} at {dataset_dir(dataset_id)} cannot be loaded "
            f"({type(error).__name__}: {error}); delete it and rebuild with "
            f"`{build_command(dataset_id)} --force`"
        ) from error


def build_record(dataset: Any) -> dict[str, Any]:
    """The build record (statistics, digests, parameters) stored in a dataset's metadata."""
    return dict(dataset.storage.metadata.get(METADATA_KEY, {}))
