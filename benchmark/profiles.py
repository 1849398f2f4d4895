"""Scale profiles: every knob that sets how big a run is, in one frozen dataclass.

A profile never changes what an algorithm is (its losses, networks, learning rates); it sets how
long it trains, how it is evaluated and, for built-on-the-fly data, how large the datasets are.
Every result records the whole profile, so a number can always be traced to its scale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any

from benchmark.precision import AUTO, FP32, Precision
from benchmark.ranges import Count, Positive, Range

FULL_EPISODE_S = 25.0  # dm_control walker: 1,000 control steps = 500 agent steps (repeat 2)


@dataclass(frozen=True)
class Profile:
    """How large one run of the benchmark is.

    name: ``smoke`` (tests), ``demo`` (the README's 15-minute CPU demonstration), ``full``
        (the benchmark) or ``state`` (the state track's CPU reference protocol).
    updates: gradient updates per cell (online cells: updates after the initial random steps).
    eval_interval: evaluate every this many updates (and always after the last one); a baseline
        with its own update count (``algo_updates``) is evaluated at the same fractions of its run.
    eval_episodes: episodes per evaluation, on reset seeds ``10_000 + i``.
    episode_time_limit_s: simulated seconds per episode, for evaluation, online training and
        built-on-the-fly datasets (25 s = 500 agent steps, the published episode).
    dataset_transitions: size of built-on-the-fly datasets; ``None`` uses the recipes' full
        datasets, which must already exist (built or downloaded).
    dataset_namespace: Minari namespace of built-on-the-fly datasets (``vorb-demo/walker-walk/...``),
        so a small variant never shadows a full dataset.
    datasets: what ``--datasets default`` selects (recipe ids).
    seeds: how many seeds ``--seeds`` defaults to.
    config_overrides: (field, value) pairs applied to a baseline's config where it has the field;
        only scale and speed knobs (batch size, random warm-up, replay capacity), never
        algorithm choices (losses, networks, learning rates).
    algo_updates: (baseline, updates) pairs that replace ``updates`` for those baselines, so a
        small budget can go where it shows learning; recorded with every result (``to_json``).
    precision: ``fp32``, ``bf16`` (autocast, for the baselines that have it) or ``auto`` (bf16
        only where it measures faster on this machine, decided once per run:
        :mod:`benchmark.precision`); each cell records the one it trained in.
    """

    name: str
    updates: Count
    eval_interval: Count
    eval_episodes: Count
    episode_time_limit_s: Positive
    dataset_transitions: Annotated[int | None, Range(low=1)]
    dataset_namespace: str | None
    datasets: tuple[str, ...]
    seeds: Count
    config_overrides: tuple[tuple[str, Any], ...] = ()
    algo_updates: tuple[tuple[str, int], ...] = ()
    precision: Precision = FP32

    def updates_for(self, algo: str) -> int:
        """Gradient updates of a cell of baseline ``algo`` (``updates`` unless overridden)."""
        return dict(self.algo_updates).get(algo, self.updates)

    def eval_interval_for(self, algo: str) -> int:
        """``eval_interval`` scaled to ``algo``'s update count: every cell gets as many
        evaluations, so a long run's curve costs no more evaluation episodes per update."""
        return max(1, self.eval_interval * self.updates_for(algo) // self.updates)

    @property
    def is_demonstration(self) -> bool:
        """``smoke`` and ``demo`` are too small for their numbers to mean anything."""
        return self.name in ("smoke", "demo")

    def dataset_id(self, recipe_id: str) -> str:
        """Where this profile's copy of a recipe's dataset lives (``vorb/...`` -> ``vorb-demo/...``)."""
        if self.dataset_namespace is None:
            return recipe_id
        _, _, rest = recipe_id.partition("/")
        return f"{self.dataset_namespace}/{rest}"

    def apply(self, config: Any) -> Any:
        """The baseline's config with this profile's scale overrides (fields it lacks are skipped)."""
        names = {field.name for field in dataclasses.fields(config)}
        changes = {key: value for key, value in self.config_overrides if key in names}
        return dataclasses.replace(config, **changes)

    def describe(self) -> str:
        """One line for ``--help`` and the leaderboard."""
        data = (
            "the recipes' full datasets"
            if self.dataset_transitions is None
            else f"datasets of {self.dataset_transitions} transitions built on the fly"
        )
        overrides = ", ".join(f"{k}={v}" for k, v in self.config_overrides) or "none"
        steps = round(self.episode_time_limit_s / FULL_EPISODE_S * 500)
        per_algo = ", ".join(
            f"{algo}: {n} updates, evaluation every {self.eval_interval_for(algo)}"
            for algo, n in self.algo_updates
        )
        updates = f"{self.updates} updates, evaluation every {self.eval_interval} updates" + (
            f" ({per_algo})" if per_algo else ""
        )
        return (
            f"{updates} over "
            f"{self.eval_episodes} episode(s) of {steps} agent steps, {data}, "
            f"{self.seeds} seed(s); precision {self.precision}; config overrides: {overrides}"
        )

    def to_json(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["config_overrides"] = dict(self.config_overrides)
        record["algo_updates"] = dict(self.algo_updates)
        return record


RANDOM = "vorb/walker-walk/random-v0"
MEDIUM_EXPERT = "vorb/walker-walk/medium-expert-v0"
EXPERT = "vorb/walker-walk/expert-v0"

PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (
        Profile(
            name="smoke",
            updates=4,
            eval_interval=2,
            eval_episodes=1,
            episode_time_limit_s=1.0,  # 20 agent steps
            dataset_transitions=60,
            dataset_namespace="vorb-smoke",
            datasets=(RANDOM,),
            seeds=1,
            config_overrides=(
                ("batch_size", 8),
                ("initial_random_steps", 10),
                ("replay_capacity", 1_000),
            ),
        ),
        Profile(
            # The README's demonstration: under 20 min on an idle 2-core CPU from a fresh clone,
            # set-up included, with BC visibly learning. Measured on an idle machine, one thread:
            # a BC update at batch 256 takes 1.42 s in fp32 and 0.59 s under bf16 autocast (this
            # CPU has AVX512-BF16); at batch 128, 0.52 s / 0.25 s. BC needs about 256k samples
            # (docs/sources.md: 1,000 updates at 256 reached 42.8); at batch 128 it swung between
            # evaluations (-1.5/2.9/31.1/1.4 and -0.6/25.8/20.8/13.7 at 250/500/750/1,000). So:
            # batch 256, bf16, 900 updates (~9 min a seed, both seeds side by side). A 500-step
            # evaluation episode takes 13 s alone, ~18 s with two workers (software rendering);
            # the actor-critics need 10^5-10^6 updates: 6 show that they run, no more. 10,000
            # expert transitions take ~3 min to build.
            name="demo",
            updates=6,
            eval_interval=2,  # three evaluations per cell (BC: every 300 of its 900 updates)
            eval_episodes=1,  # evaluation episodes are the cost that grows with cells
            episode_time_limit_s=FULL_EPISODE_S,  # full episodes: the normalised scale holds
            dataset_transitions=10_000,  # 20 expert episodes
            dataset_namespace="vorb-demo-10k",  # size in the id: an older copy never loads
            datasets=(EXPERT,),
            seeds=2,
            config_overrides=(
                ("batch_size", 256),
                ("initial_random_steps", 100),
                ("replay_capacity", 10_000),
            ),
            algo_updates=(("bc", 900),),
            # bf16 autocast: BC 2.4x faster on an AVX512-BF16 CPU, 2.3x slower on one without
            precision=AUTO,
        ),
        Profile(
            name="full",
            # The original CQL-CURL walker figure and CORL: 1M updates, one budget for every
            # baseline (V-D4RL's DrQ+BC ran ~550k: docs/sources.md, "BC and DrQ+BC")
            updates=1_000_000,
            eval_interval=5_000,  # the original CQL-CURL protocol and CORL: every 5,000 updates
            eval_episodes=10,  # the original CQL-CURL, CORL and V-D4RL: 10 episodes
            episode_time_limit_s=FULL_EPISODE_S,
            dataset_transitions=None,
            dataset_namespace=None,
            datasets=(
                RANDOM,
                "vorb/walker-walk/medium-replay-v0",
                "vorb/walker-walk/medium-v0",
                MEDIUM_EXPERT,
                EXPERT,
            ),
            seeds=3,
        ),
        Profile(
            # The state track's reference protocol (results/reference-state/): CORL's
            # evaluation (every 5,000 updates over 10 episodes, deterministic actions) at
            # 100,000 updates, a tenth of CORL's 1M, which is what a 2-core CPU computes in a
            # day for the cheap baselines (measured: see the README's state track section).
            name="state",
            updates=100_000,
            eval_interval=5_000,  # CORL: every 5,000 updates
            eval_episodes=10,  # CORL: 10 episodes
            episode_time_limit_s=FULL_EPISODE_S,
            dataset_transitions=None,  # the recipes' full datasets (state-only builds)
            dataset_namespace=None,
            datasets=(
                RANDOM,
                "vorb/walker-walk/medium-replay-v0",
                "vorb/walker-walk/medium-v0",
                MEDIUM_EXPERT,
                EXPERT,
            ),
            seeds=3,
        ),
    )
}


def get(name: str) -> Profile:
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}")
    return PROFILES[name]
