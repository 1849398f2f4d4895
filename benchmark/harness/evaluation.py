"""The evaluation protocol: fixed, recorded with every run, and nothing a baseline can tune.

Every ``eval_interval`` updates and after the last one, the agent plays ``episodes`` episodes on
its own evaluation environment (never the training one), resetting episode ``i`` with seed
``10_000 + i`` and taking the deterministic action. The score is the mean return and
100 x the Minari normalised score against a dataset's reference returns.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from benchmark.data.envs import ENV_ID, STATE_ENV_ID
from benchmark.data.reference_returns import RETURNS_SOURCE, load_reference_returns
from benchmark.data.state_replay import StateNormalizer
from benchmark.harness.training import observer

EVAL_SEED_OFFSET = 10_000  # disjoint from training seeds and from data-collection seeds


@dataclass(frozen=True)
class Protocol:
    """What an evaluation is; stored in every run's metadata."""

    episodes: int
    time_limit_s: float
    seed_offset: int = EVAL_SEED_OFFSET
    deterministic: bool = True
    env_id: str = ENV_ID
    observation: str = "pixels"  # "state": the state walker, states normalised as in training
    # The discount of the true discounted return set against the critic's estimate: the SAC
    # family's 0.99 (CURL paper). 0.99**500 < 0.007, so a 500-step episode's discounted return
    # is within 1% of the infinite-horizon value the critic estimates.
    discount: float = 0.99

    @classmethod
    def for_kind(cls, obs_kind: str, episodes: int, time_limit_s: float) -> Protocol:
        """The protocol of an observation kind: the same episodes and seeds; on states the
        evaluation env is ``vorb/walker-walk-state-v0`` (no rendering)."""
        env_id = STATE_ENV_ID if obs_kind == "state" else ENV_ID
        return cls(episodes, time_limit_s, env_id=env_id, observation=obs_kind)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(self.seed_offset + i for i in range(self.episodes))

    def make_env(self) -> gym.Env:
        """A fresh evaluation environment (the caller closes it)."""
        return gym.make(self.env_id, time_limit_s=self.time_limit_s)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "seeds": list(self.seeds)}


@dataclass(frozen=True)
class ReferenceScores:
    """The returns that map to normalised 0 and 100, and where they came from."""

    min_score: float
    max_score: float
    source: str  # "dataset:<id>", the returns file, or "none"

    def normalize(self, episode_return: float) -> float:
        """100 x Minari's ``(return - ref_min) / (ref_max - ref_min)``; NaN without references."""
        if not (math.isfinite(self.min_score) and math.isfinite(self.max_score)):
            return math.nan
        return 100.0 * (episode_return - self.min_score) / (self.max_score - self.min_score)


NO_REFERENCE = ReferenceScores(math.nan, math.nan, "none")


@dataclass(frozen=True)
class EpisodeResult:
    """One evaluation episode: its return, its discounted return from the start state and the
    agent's own estimate of that value, Q(s0, pi(s0)) (NaN for agents without a critic)."""

    episode_return: float
    discounted_return: float
    q_estimate: float


@dataclass(frozen=True)
class EvalResult:
    returns: tuple[float, ...]
    normalized_score: float
    discounted_returns: tuple[float, ...] = ()
    q_estimates: tuple[float, ...] = ()

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    @property
    def discounted_return(self) -> float:
        return float(np.mean(self.discounted_returns)) if self.discounted_returns else math.nan

    @property
    def q_estimate(self) -> float:
        return float(np.mean(self.q_estimates)) if self.q_estimates else math.nan


def run_episode(
    agent: Any,
    env: gym.Env,
    seed: int,
    deterministic: bool,
    discount: float = 0.99,
    obs_key: str = "pixels",
    normalizer: StateNormalizer | None = None,
) -> EpisodeResult:
    """One episode; the agent sees 3-frame stacks (pixels) or normalised states (state)."""

    state_dim = env.observation_space["state"].shape[0]
    stacker = observer(obs_key, normalizer or StateNormalizer.identity(state_dim))
    observation, _ = env.reset(seed=seed)
    obs = stacker.reset(observation[obs_key])
    # An agent with a critic offers value(obs); the runner never reaches further inside.
    value = getattr(agent, "value", None)
    q_estimate = float(value(obs)) if value is not None else math.nan
    total = discounted = 0.0
    weight, done = 1.0, False
    while not done:
        action = agent.act(obs, deterministic=deterministic)
        observation, reward, terminated, truncated, _ = env.step(action)
        obs = stacker.push(observation[obs_key])
        total += float(reward)
        discounted += weight * float(reward)
        weight *= discount
        done = terminated or truncated
    return EpisodeResult(total, discounted, q_estimate)


def evaluate(
    agent: Any,
    env: gym.Env,
    protocol: Protocol,
    references: ReferenceScores,
    normalizer: StateNormalizer | None = None,
) -> EvalResult:
    """Play the protocol's episodes; ``env`` must be an evaluation env from ``protocol``. On
    states, ``normalizer`` is the training data's (the identity for online agents)."""
    episodes = [
        run_episode(
            agent,
            env,
            seed,
            protocol.deterministic,
            protocol.discount,
            protocol.observation,
            normalizer,
        )
        for seed in protocol.seeds
    ]
    returns = tuple(episode.episode_return for episode in episodes)
    return EvalResult(
        returns,
        references.normalize(float(np.mean(returns))),
        discounted_returns=tuple(episode.discounted_return for episode in episodes),
        q_estimates=tuple(episode.q_estimate for episode in episodes),
    )


# -- reference scores --------------------------------------------------------------------------
def dataset_references(dataset: Any) -> ReferenceScores | None:
    """A Minari dataset's ``ref_min_score`` / ``ref_max_score``, if it carries them."""
    meta = dataset.storage.metadata
    low, high = meta.get("ref_min_score"), meta.get("ref_max_score")
    if low is None or high is None:
        return None
    return ReferenceScores(float(low), float(high), f"dataset:{dataset.spec.dataset_id}")


def _returns_file_references() -> ReferenceScores | None:
    """Random and expert returns measured with the behaviour policies (full-length episodes)."""
    try:
        returns = load_reference_returns()
    except (ImportError, OSError, ValueError):
        return None
    low, high = _mean_return(returns.get("random")), _mean_return(returns.get("expert"))
    if low is None or high is None:
        return None
    return ReferenceScores(low, high, RETURNS_SOURCE)


def _mean_return(entry: Any) -> float | None:
    if isinstance(entry, int | float):
        return float(entry)
    if isinstance(entry, dict):
        for key in ("mean", "return_mean", "mean_return"):
            if isinstance(entry.get(key), int | float):
                return float(entry[key])
    return None


def reference_scores(dataset: Any = None, candidates: tuple[Any, ...] = ()) -> ReferenceScores:
    """The one place that decides which references normalise a run's returns.

    1. the run's own dataset (offline cells);
    2. any of ``candidates``: datasets built for the same profile (online cells, so that their
       scores share a scale with the offline cells they are compared with);
    3. ``datasets/policies/returns.json`` (random and expert mean returns of full episodes);
    4. otherwise none: normalised scores are NaN and the source reads ``none``.
    """
    for source in (dataset, *candidates):
        if source is not None and (found := dataset_references(source)) is not None:
            return found
    return _returns_file_references() or NO_REFERENCE
