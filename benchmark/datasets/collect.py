"""Episode collection, run inside worker processes: one task in, one episode's arrays out.

Everything an episode needs travels in its :class:`EpisodeTask` (reset seed, action seed, step
cap, source), so an episode's data depends only on the recipe, the data seed and the episode's
index, never on which worker ran it or how many workers there were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.envs import make_walker_pixels, make_walker_state
from benchmark.datasets.policies import BehaviourPolicy, random_policy_action

# Per-process caches: a worker builds its environment and loads its policy once, not per episode.
_ENVS: dict[tuple[float, bool], Any] = {}
_POLICIES: dict[Path, Any] = {}


@dataclass(frozen=True)
class EpisodeTask:
    """One episode to collect."""

    index: int
    reset_seed: int
    action_seed: tuple[int, ...]  # entropy of the episode's action generator
    max_steps: int  # cap (the last episode of a dataset may stop early: a truncation)
    time_limit_s: float
    kind: str  # "random" | "policy" | "replay"
    checkpoint: Path | None = None
    stochastic: bool = True
    actions: np.ndarray | None = None  # replay: the actions to replay
    pixels: bool = True  # False: the state walker, no rendering (a state-only build)


@dataclass(frozen=True)
class EpisodeArrays:
    """One collected episode: T actions, T+1 observations."""

    index: int
    reset_seed: int
    pixels: np.ndarray | None  # (T+1, H, W, 3) uint8; None in a state-only build
    state: np.ndarray  # (T+1, 24) float64
    physics: np.ndarray  # (T+1, 18) float64
    actions: np.ndarray  # (T, 6) float32
    rewards: np.ndarray  # (T,) float64
    terminations: np.ndarray  # (T,) bool
    truncations: np.ndarray  # (T,) bool

    def __len__(self) -> int:
        return len(self.actions)


def episode_seeds(data_seed: int, index: int) -> tuple[int, tuple[int, ...]]:
    """The reset seed (< 2**32, shimmy's limit) and action-generator entropy of episode ``index``."""
    reset_seed = int(np.random.SeedSequence([data_seed, index, 0]).generate_state(1)[0])
    return reset_seed, (data_seed, index, 1)


def _env(time_limit_s: float, pixels: bool) -> Any:
    if (time_limit_s, pixels) not in _ENVS:
        make = make_walker_pixels if pixels else make_walker_state
        _ENVS[time_limit_s, pixels] = make(time_limit_s=time_limit_s)
    return _ENVS[time_limit_s, pixels]


def _actor(task: EpisodeTask) -> Any:
    """A function ``(state, rng) -> action`` for the task's source."""
    if task.kind == "random":
        return lambda state, rng: random_policy_action(rng)
    if task.kind == "policy":
        if task.checkpoint not in _POLICIES:
            _POLICIES[task.checkpoint] = BehaviourPolicy.load(task.checkpoint)
        policy = _POLICIES[task.checkpoint]
        return lambda state, rng: policy.act(state, rng, deterministic=not task.stochastic)
    if task.kind == "replay":
        assert task.actions is not None
        replayed = iter(task.actions)
        return lambda state, rng: np.asarray(next(replayed), dtype=np.float32)
    raise ValueError(f"unknown episode source {task.kind!r}")


def collect_episode(task: EpisodeTask) -> EpisodeArrays:
    """Run one episode in the walker and return every observation, action and reward.

    The behaviour policies act on the state, so a state-only task (no rendering) yields the same
    actions, states, physics and rewards as a pixel task of the same episode."""
    env, act = _env(task.time_limit_s, task.pixels), _actor(task)
    rng = np.random.default_rng(np.random.SeedSequence(task.action_seed))
    obs, _ = env.reset(seed=task.reset_seed)
    observations, actions, rewards, terms, truncs = [obs], [], [], [], []
    for step in range(task.max_steps):
        action = act(obs["state"], rng)
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        # Stopping at the cap before the env's time limit is a truncation of the data.
        truncated = truncated or (step == task.max_steps - 1 and not terminated)
        terms.append(terminated)
        truncs.append(truncated)
        if terminated or truncated:
            break
    return EpisodeArrays(
        index=task.index,
        reset_seed=task.reset_seed,
        pixels=np.stack([o["pixels"] for o in observations]) if task.pixels else None,
        state=np.stack([o["state"] for o in observations]),
        physics=np.stack([o["physics"] for o in observations]),
        actions=np.stack(actions).astype(np.float32),
        rewards=np.asarray(rewards, dtype=np.float64),
        terminations=np.asarray(terms, dtype=bool),
        truncations=np.asarray(truncs, dtype=bool),
    )


def init_worker() -> None:
    """Pool initialiser: one torch thread per worker process (the pool already uses the cores)."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # torch is only needed for policy sources
        pass
