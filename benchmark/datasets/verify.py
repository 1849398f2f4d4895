"""Check a built dataset against its digests, and its frames against a re-render.

Actions, terminations, truncations, states and physics states must match exactly; rewards
must match on the 2**-20 grid (``rewards_rounded``), because NumPy's ``exp`` differs in the
last bits between CPUs (``benchmark.datasets.store.REWARD_GRID``); their exact digest is
reported (bit-exact or not) but does not fail.
Frames are re-rendered from a sample of stored physics states and compared with a tolerance,
because software (llvmpipe) and GPU renderers differ in anti-aliasing and shading by a few
levels; the frame digest is still compared and reported (bit-exact or not) but does not fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from benchmark.data.envs import make_walker_pixels
from benchmark.datasets.recipes import RecipeError, get_recipe, state_dataset_id
from benchmark.datasets.store import (
    DatasetError,
    Digester,
    build_record,
    episode_arrays,
    load_or_explain,
)

PIXEL_MEAN_ABS_TOL = 2.0  # mean |stored - re-rendered| over a frame, in 0-255 levels
PIXEL_OFF_FRACTION_TOL = 0.02  # fraction of pixel values that may differ by more than ...
PIXEL_OFF_LEVELS = 16  # ... this many levels (edges, where renderers anti-alias differently)
SAMPLE_FRAMES = 16
EXACT_KEYS = ("actions", "terminations", "truncations", "state", "physics")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    dataset_id: str
    reference: str  # where the expected digests came from
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def lines(self) -> list[str]:
        head = f"{self.dataset_id}: {'OK' if self.ok else 'FAILED'} (digests from {self.reference})"
        return [head] + [
            f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks
        ]


def _recipe_of(dataset_id: str, record: dict[str, Any]) -> Any:
    """The recipe whose digests ``dataset_id`` must match: its own, or for a full-size
    state-only copy (``vorb-state/...``) the recipe it copies; else None."""
    for candidate in (dataset_id, record.get("recipe")):
        try:
            recipe = get_recipe(candidate) if candidate else None
        except RecipeError:
            continue
        if recipe is not None and dataset_id in (candidate, state_dataset_id(candidate)):
            return recipe
    return None


def expected_digests(dataset_id: str, dataset: Any) -> tuple[dict[str, str], str]:
    """The recipe's committed digests for a recipe id or its full-size state-only copy, else
    the build record's own."""
    record = build_record(dataset)
    recipe = _recipe_of(dataset_id, record)
    if recipe is not None and recipe.digests:
        return recipe.digests, recipe.path.name
    digests = record.get("digests")
    if not digests:
        raise DatasetError(
            f"{dataset_id}: no digests to verify against (no recipe digests, no build record)"
        )
    return digests, "the dataset's build record"


def _scan(
    dataset: Any, sample: int, seed: int
) -> tuple[Digester, list[tuple[np.ndarray, np.ndarray]]]:
    """One pass over the episodes: digests, plus (physics, frame) pairs at sampled positions."""
    rng = np.random.default_rng(seed)
    frames_total = dataset.total_steps + dataset.total_episodes
    chosen = set(rng.choice(frames_total, size=min(sample, frames_total), replace=False).tolist())
    digester, pairs, offset = Digester(), [], 0
    try:
        for episode in dataset.iterate_episodes():
            arrays = episode_arrays(episode)
            digester.update(arrays)
            if arrays["pixels"] is None:  # a state-only dataset: no frames to re-render
                continue
            for position in range(len(arrays["pixels"])):
                if offset + position in chosen:
                    pairs.append((arrays["physics"][position], arrays["pixels"][position]))
            offset += len(arrays["pixels"])
    except Exception as error:  # a truncated or corrupt file surfaces here, deep in pyarrow
        raise DatasetError(
            f"{dataset.id}: cannot read its episodes, the dataset files are corrupt or truncated "
            f"({type(error).__name__}: {error}); delete and rebuild or re-download it"
        ) from error
    return digester, pairs


def _render_check(dataset: Any, pairs: list[tuple[np.ndarray, np.ndarray]]) -> Check:
    # The dataset's own env spec: a visual variant (benchmark.data.variants) renders its way.
    spec = dataset.spec.env_spec
    env = gym.make(spec).unwrapped if spec is not None else make_walker_pixels()
    try:
        mean_diffs, off_fractions = [], []
        for physics, frame in pairs:
            env.set_physics_state(physics)
            diff = np.abs(env.render().astype(np.int16) - frame.astype(np.int16))
            mean_diffs.append(float(diff.mean()))
            off_fractions.append(float((diff > PIXEL_OFF_LEVELS).mean()))
    finally:
        env.close()
    worst_mean, worst_off = max(mean_diffs), max(off_fractions)
    ok = worst_mean <= PIXEL_MEAN_ABS_TOL and worst_off <= PIXEL_OFF_FRACTION_TOL
    detail = (
        f"{len(pairs)} re-rendered frames: worst mean |diff| {worst_mean:.3f} "
        f"(tol {PIXEL_MEAN_ABS_TOL}), worst fraction > {PIXEL_OFF_LEVELS} levels "
        f"{worst_off:.4f} (tol {PIXEL_OFF_FRACTION_TOL})"
    )
    return Check("pixels re-rendered", ok, detail)


def _digest_check(key: str, actual: str, expected: str | None) -> Check:
    if actual == expected:
        return Check(key, True, f"sha256 {actual[:16]}... matches")
    return Check(key, False, f"sha256 {actual[:16]}... expected {(expected or '(none)')[:16]}...")


def digest_checks(
    actual: dict[str, str], expected: dict[str, str], margin: float | None = None
) -> list[Check]:
    """The exact arrays' digests, then the rewards': rounded where ``expected`` has that digest
    (digests from before it have only the exact one, which is then checked). ``margin``: the
    rewards' distance from the nearest rounding midpoint, reported when known."""
    checks = [_digest_check(key, actual[key], expected.get(key)) for key in EXACT_KEYS]
    if "rewards_rounded" not in expected:
        return [*checks, _digest_check("rewards", actual["rewards"], expected.get("rewards"))]
    bit_exact = actual["rewards"] == expected.get("rewards")
    note = "bit-exact" if bit_exact else "differs in the last bits (NumPy's exp on this CPU)"
    if margin is not None:
        note += f"; the rounded digest holds for differences below {margin:.1e}"
    rounded = _digest_check(
        "rewards_rounded", actual["rewards_rounded"], expected["rewards_rounded"]
    )
    return [*checks, rounded, Check("rewards digest", True, note)]


def verify_dataset(dataset_id: str, sample: int = SAMPLE_FRAMES, seed: int = 0) -> VerifyReport:
    """Verify a built dataset (see the module docstring for what is exact and what is not)."""
    dataset = load_or_explain(dataset_id)
    expected, reference = expected_digests(dataset_id, dataset)
    digester, pairs = _scan(dataset, sample, seed)
    actual = digester.hexdigests()
    checks = digest_checks(actual, expected, digester.rewards_margin)
    if "pixels" not in actual:  # a state-only dataset holds no frames
        return VerifyReport(dataset_id, reference, tuple(checks))
    bit_exact = actual["pixels"] == expected.get("pixels")
    checks.append(
        Check("pixels digest", True, "bit-exact" if bit_exact else "differs (checked by re-render)")
    )
    checks.append(_render_check(dataset, pairs))
    return VerifyReport(dataset_id, reference, tuple(checks))
