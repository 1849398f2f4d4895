"""Scale profiles: every knob that sets how big a run is, in one frozen dataclass.

A profile never changes what an algorithm is (its losses, networks, learning rates); it sets how
long it trains, how it is evaluated and, for built-on-the-fly data, how large the datasets are.
Every result records the whole profile, so a number can always be traced to its scale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, Any

from baselines.contract import Count, Positive, Range
from benchmark.harness.precision import AUTO, FP32, Precision

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
        :mod:`benchmark.harness.precision`); each cell records the one it trained in.
    state_eval_episodes: episodes per evaluation of state cells, when it differs from
        ``eval_episodes`` (state episodes render nothing and cost a twentieth of a pixel one).
    first_updates_of: the update count of the protocol this profile is the first ``updates`` of
        (``pixels-cpu``: 1,000,000), so ``--help`` and the leaderboard say that its numbers are
        a budget's, not the published scale's; ``None`` where the profile is a protocol itself.
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
    state_eval_episodes: Annotated[int | None, Range(low=1)] = None
    first_updates_of: Annotated[int | None, Range(low=1)] = None

    def eval_episodes_for(self, obs_kind: str) -> int:
        """Episodes per evaluation of a cell of that observation kind: ``state_eval_episodes``
        for state cells when set (state episodes render nothing: 10 cost what 1 pixel
        episode does), else ``eval_episodes``."""
        if obs_kind == "state" and self.state_eval_episodes is not None:
            return self.state_eval_episodes
        return self.eval_episodes

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
        episodes = f"{self.eval_episodes} episode(s)" + (
            f" ({self.state_eval_episodes} on states)" if self.state_eval_episodes else ""
        )
        truncated = (
            f"the first {self.updates:,} updates of the {self.first_updates_of:,}-update protocol,"
            " not the published scale: "
            if self.first_updates_of
            else ""
        )
        return (
            f"{truncated}{updates} over "
            f"{episodes} of {steps} agent steps, {data}, "
            f"{self.seeds} seed(s); precision {self.precision}; the profile's config overrides: {overrides}"
        )

    def to_json(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["config_overrides"] = dict(self.config_overrides)
        record["algo_updates"] = dict(self.algo_updates)
        if self.state_eval_episodes is None:
            # Left out at its default, so cells recorded before the field existed keep their
            # identity and resume (the setup is compared as JSON).
            del record["state_eval_episodes"]
        if self.first_updates_of is None:
            del record["first_updates_of"]  # the same: older cells keep their identity
        return record


RANDOM = "vorb/walker-walk/random-v0"
MEDIUM_EXPERT = "vorb/walker-walk/medium-expert-v0"
EXPERT = "vorb/walker-walk/expert-v0"
# The five recipes, cheapest quality first: what `full` and `state` run over.
ALL_DATASETS = (
    RANDOM,
    "vorb/walker-walk/medium-replay-v0",
    "vorb/walker-walk/medium-v0",
    MEDIUM_EXPERT,
    EXPERT,
)

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
            # The README's demonstration: at most 20 min from a fresh clone on any 2-core CPU,
            # set-up included, with or without native bf16. Measured costs (one torch thread,
            # idle machine; docs/sources.md, "This project's measurements"): pixel BC at batch
            # 128 takes 0.52 s an update in fp32 (0.25 s under bf16 autocast where that is
            # faster), a rendered 500-step evaluation episode ~13 s; on states a BC update takes
            # 2.5 ms, TD3+BC 10 ms, SAC 14 ms, CQL ~0.3 s, and an evaluation episode 0.7 s. So the
            # state baselines carry the learning story (thousands of updates, 10 evaluation
            # episodes: intervals that exclude the random policy's 0), and the pixel baselines
            # run at the scale that shows the pipeline and the pixel-state gap: pixel BC 300
            # updates, the pixel actor-critics 6 (they need 10^5-10^6), one pixel episode an
            # evaluation. 10,000 expert transitions take ~3 min to render.
            name="demo",
            updates=6,
            eval_interval=3,  # two evaluations per cell, at half and at the end of its run
            eval_episodes=1,  # a rendered pixel episode costs ~13 s
            episode_time_limit_s=FULL_EPISODE_S,  # full episodes: the normalised scale holds
            dataset_transitions=10_000,  # 20 expert episodes
            dataset_namespace="vorb-demo-10k",  # size in the id: an older copy never loads
            datasets=(EXPERT,),
            seeds=2,
            config_overrides=(
                ("batch_size", 128),  # pixel BC at 256 costs 1.4 s an update in fp32
                ("initial_random_steps", 100),
                ("replay_capacity", 10_000),
            ),
            algo_updates=(
                ("bc-pixels", 300),
                ("bc-state", 3_000),
                ("td3bc-state", 6_000),
                ("sac-state-offline", 4_000),
                ("cql-state", 60),
                ("sac-state-online", 2_000),
            ),
            # bf16 autocast: BC 2.4x faster on an AVX512-BF16 CPU, 2.3x slower on one without
            precision=AUTO,
            state_eval_episodes=10,  # 7 s an evaluation on states
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
            datasets=ALL_DATASETS,
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
            datasets=ALL_DATASETS,
            seeds=3,
        ),
        Profile(
            # Pixels on a CPU budget (results/reference-pixels/): the `full` protocol (the
            # recipes' expert dataset, 10 rendered episodes of 500 agent steps, deterministic
            # actions, each baseline's published batch size) cut to its first 10,000 updates,
            # in fp32 so a cell resumes on any CPU of this machine kind (they differ in bf16).
            # Why 10,000 (results/reference-pixels/README.md): an update costs 1.2-1.8 s on one
            # core here (benchmarks/test_bench_full_scale_cost.py), so the 15 cells are ~61
            # core-hours; 20,000 would double that. CQL-CURL's first seed reads -0.5, 2.0,
            # 43.8, 58.0 normalised at 2,500-10,000 updates: still rising, but already far
            # above random, so the ordering the seed claims (CQL-CURL learns, offline
            # SAC-CURL fails) is testable at 10,000.
            name="pixels-cpu",
            updates=10_000,
            eval_interval=2_500,
            eval_episodes=10,  # as `full`: the original CQL-CURL, CORL and V-D4RL
            episode_time_limit_s=FULL_EPISODE_S,
            dataset_transitions=None,  # the recipes' full datasets
            dataset_namespace=None,
            datasets=(EXPERT,),
            seeds=3,
            precision=FP32,
            first_updates_of=1_000_000,
        ),
    )
}


def get(name: str) -> Profile:
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}")
    return PROFILES[name]
