"""The loop around an agent: trainers (offline, online), the observer, seeding and RNG state.

A baseline is an :class:`~baselines.contract.Agent` (networks, losses, ``update``). The loop around it, one update per
``step()``, is a :class:`Trainer`: offline trainers sample from a replay filled from a dataset
(:class:`FrameReplay` on pixels, :class:`StateReplay` on states); online trainers also act in the
environment and append to their own replay of the same kind. The harness
owns seeding, the device, the evaluation schedule and results: it builds a trainer with
:func:`make_trainer`, calls ``step()`` and evaluates ``trainer.agent`` when it chooses.

``trainer.state_dict()`` holds everything needed to continue bit for bit on CPU: the agent
(networks, optimisers, temperature), the replay position, every RNG and the step counters. An
online trainer's replay is a ring; with ``attach_store(folder)`` its checkpoints hold only what is
new (chunk files in ``folder``), and ``checkpoint_saved()`` after each write frees the rest.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from baselines.contract import Agent
from benchmark.data.sampler import FrameReplay, FrameStacker
from benchmark.data.state_replay import StateNormalizer, StateObserver, StateReplay

Replay = FrameReplay | StateReplay


def rng_state() -> dict[str, Any]:
    """Every RNG a training step may touch (torch CPU and CUDA, numpy, python)."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed every global RNG; the harness calls this before building an agent."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class OfflineTrainer:
    """One update per step on batches drawn from a fixed dataset."""

    def __init__(
        self,
        agent: Agent,
        replay: Replay,
        batch_size: int,
        seed: int,
        device: torch.device,
    ) -> None:
        self.agent, self.batch_size, self.device = agent, batch_size, device
        # The dataset lives where the agent computes: batches are gathered there, not copied.
        self.replay = replay.to(device)
        self.generator = torch.Generator(device=self.replay.device).manual_seed(seed)
        self.updates = 0
        self.env_steps = 0  # offline: the environment is never stepped

    def step(self) -> dict[str, float]:
        batch = self.replay.sample(self.batch_size, self.generator).to(self.device)
        metrics = self.agent.update(batch)
        self.updates += 1
        return metrics

    def attach_store(self, folder: Path | str) -> None:
        """Nothing to store: the dataset is not part of an offline checkpoint."""

    def checkpoint_saved(self) -> None:
        """Nothing to clean up (see :meth:`attach_store`)."""

    def state_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent.state_dict(),
            "updates": self.updates,
            "sampler_rng": self.generator.get_state(),
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        self.updates = int(state["updates"])
        self.generator.set_state(state["sampler_rng"])
        set_rng_state(state["rng"])


class OnlineTrainer:
    """SAC-style online loop: one environment step, then one update, per ``step()``.

    The first ``initial_random_steps`` agent steps act uniformly at random and do not update
    (CURL: 1,000 initial steps). Episode ``i`` resets with seed ``seed * 100_003 + i`` so a
    run restored at an episode boundary replays the same environment.
    """

    def __init__(
        self,
        agent: Agent,
        env: gym.Env,
        batch_size: int,
        initial_random_steps: int,
        replay_capacity: int,
        seed: int,
        device: torch.device,
        action_repeat: int,
        obs_key: str = "pixels",
    ) -> None:
        self.agent, self.env, self.device = agent, env, device
        self.batch_size, self.initial_random_steps = batch_size, initial_random_steps
        self.action_repeat, self.seed, self.obs_key = action_repeat, seed, obs_key
        self.action_dim = int(np.prod(env.action_space.shape))
        # A ring of the latest replay_capacity transitions, on the agent's device.
        self.replay = online_replay(env, obs_key, replay_capacity, self.action_dim, device)
        self.generator = torch.Generator(device=self.replay.device).manual_seed(seed)
        self.action_rng = np.random.default_rng(seed)
        # Online state agents see raw states: there is no dataset to normalise by.
        self.stacker = observer(obs_key, StateNormalizer.identity(self.replay.obs_shape[0]))
        self.updates = self.agent_steps = self.episodes = 0
        self._obs: np.ndarray | None = None

    @property
    def env_steps(self) -> int:
        """Simulator steps: agent steps times the action repeat."""
        return self.agent_steps * self.action_repeat

    def _reset(self) -> None:
        observation, _ = self.env.reset(seed=(self.seed * 100_003 + self.episodes) % 2**32)
        self._obs = self.stacker.reset(observation[self.obs_key])
        self.replay.start_episode(observation[self.obs_key])

    def _act(self) -> np.ndarray:
        if self.agent_steps < self.initial_random_steps:
            low, high = self.env.action_space.low, self.env.action_space.high
            return self.action_rng.uniform(low, high).astype(np.float32)
        return self.agent.act(self._obs, deterministic=False)

    def step(self) -> dict[str, float]:
        if self._obs is None:
            self._reset()
        action = self._act()
        observation, reward, terminated, truncated, _ = self.env.step(action)
        self.replay.add(action, reward, terminated, observation[self.obs_key])
        self._obs = self.stacker.push(observation[self.obs_key])
        self.agent_steps += 1
        if terminated or truncated:
            self.episodes += 1
            self._obs = None
        if self.agent_steps <= self.initial_random_steps:
            return {}
        metrics = self.agent.update(
            self.replay.sample(self.batch_size, self.generator).to(self.device)
        )
        self.updates += 1
        return metrics

    def attach_store(self, folder: Path | str) -> None:
        """Checkpoint the replay incrementally into chunk files in ``folder`` (call once, before
        :meth:`load_state_dict`): each state_dict then writes only what is new since the last.
        Without it, state_dict holds the whole replay in memory."""
        self.replay.attach_store(folder)

    def checkpoint_saved(self) -> None:
        """Call after the state_dict is safely written: deletes chunks it no longer needs."""
        self.replay.checkpoint_saved()

    @property
    def at_episode_boundary(self) -> bool:
        """Checkpoints are exact only here: a mid-episode simulator is not saved."""
        return self._obs is None

    def state_dict(self) -> dict[str, Any]:
        if not self.at_episode_boundary:
            raise RuntimeError("online checkpoints are taken at episode boundaries only")
        return {
            "agent": self.agent.state_dict(),
            "replay": self.replay.state_dict(),
            "updates": self.updates,
            "agent_steps": self.agent_steps,
            "episodes": self.episodes,
            "sampler_rng": self.generator.get_state(),
            "action_rng": self.action_rng.bit_generator.state,
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        self.replay.load_state_dict(state["replay"])
        self.updates, self.agent_steps = int(state["updates"]), int(state["agent_steps"])
        self.episodes = int(state["episodes"])
        self.generator.set_state(state["sampler_rng"])
        self.action_rng.bit_generator.state = state["action_rng"]
        set_rng_state(state["rng"])
        self._obs = None


def online_replay(
    env: gym.Env, obs_key: str, capacity: int, action_dim: int, device: torch.device
) -> Replay:
    """An empty ring replay for ``env``'s ``obs_key`` observations (frames or states)."""
    shape = env.observation_space[obs_key].shape
    if obs_key == "state":
        return StateReplay(capacity, shape[0], action_dim, device=device)
    return FrameReplay(capacity, (shape[2], shape[0], shape[1]), action_dim, device=device)


def observer(obs_key: str, normalizer: StateNormalizer) -> FrameStacker | StateObserver:
    """What turns an episode's observations into the agent's input: a 3-frame stacker on
    pixels, the state normaliser on states."""
    return StateObserver(normalizer) if obs_key == "state" else FrameStacker()


def agent_obs_shape(env: gym.Env, obs_key: str) -> tuple[int, ...]:
    """The agent's observation shape for an environment: (9, H, W) stacks or (D,) states."""
    shape = env.observation_space[obs_key].shape
    if obs_key == "state":
        return tuple(shape)
    height, width, channels = shape
    return (channels * FrameStacker().frame_stack, height, width)


def make_trainer(
    spec: Any,
    config: Any,
    source: Replay | gym.Env,
    seed: int,
    device: torch.device,
) -> OfflineTrainer | OnlineTrainer:
    """Build the agent of ``spec`` with ``config`` and wrap it in the loop its kind needs.

    ``source`` is a replay for offline baselines (a :class:`FrameReplay` on pixels, a
    :class:`StateReplay` on states) and an environment for online ones. Global RNGs are seeded
    here, before the networks are initialised.
    """
    seed_everything(seed)
    expected = StateReplay if spec.obs_kind == "state" else FrameReplay
    if spec.offline:
        if not isinstance(source, expected):
            raise TypeError(
                f"offline baseline {spec.name!r} needs a {expected.__name__}, got {source!r}"
            )
        agent = spec.agent_class()(config, source.obs_shape, source.action_dim, device)
        return OfflineTrainer(agent, source, config.batch_size, seed, device)
    if isinstance(source, FrameReplay | StateReplay):
        raise TypeError(f"online baseline {spec.name!r} needs an environment, got a dataset")
    obs_key = spec.obs_kind
    action_dim = int(np.prod(source.action_space.shape))
    agent = spec.agent_class()(config, agent_obs_shape(source, obs_key), action_dim, device)
    return OnlineTrainer(
        agent,
        source,
        config.batch_size,
        config.initial_random_steps,
        config.replay_capacity,
        seed,
        device,
        source.unwrapped.action_repeat,
        obs_key,
    )
