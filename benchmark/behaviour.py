"""Behaviour policies of the walker-walk datasets: a state-based SAC, its training CLI and a loader.

As in V-D4RL, the datasets are collected by SAC agents trained on proprioceptive states (the
``state`` observation of ``vorb/walker-walk-state-v0``, action repeat 2, no rendering):

- ``medium``: the first checkpoint whose 20-episode return (stochastic actions) is in 400-550;
- ``medium_replay``: the training episodes up to that checkpoint, stored as reset seeds and
  actions, so the pixel env can replay them without the policy;
- ``expert``: a checkpoint whose 20-episode return is >= 900.

Train with ``python -m benchmark.behaviour train --seed 0 --out datasets/policies``. The dataset
builder only needs :class:`BehaviourPolicy`, :func:`random_policy_action` and
:func:`load_reference_returns`.

The file reads top to bottom: config, networks, SAC update, replay, evaluation, the training loop
with its checkpoint selection, the loader and the CLI.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.envs import STATE_ENV_ID

POLICY_DIR = Path(__file__).resolve().parent.parent / "datasets" / "policies"
RETURNS_FILE = POLICY_DIR / "returns.json"
ACTION_REPEAT = 2  # the registered env's default; env_steps = agent_steps * ACTION_REPEAT

# Return bands that define the checkpoints (V-D4RL: medium ~ 40-55 % of expert, expert ~ 900+).
MEDIUM_BAND = (400.0, 550.0)
EXPERT_MIN = 900.0

# Evaluation reset seeds: fixed, disjoint from training seeds (those come from SeedSequence and
# are recorded). "select" picks checkpoints; "confirm" re-evaluates the saved file on fresh episodes,
# so the reported return is not inflated by having picked the best of several noisy evaluations.
EVAL_EPISODES = 20
SELECT_SEEDS = tuple(range(1_000_000, 1_000_000 + EVAL_EPISODES))
CONFIRM_SEEDS = tuple(range(2_000_000, 2_000_000 + EVAL_EPISODES))
SELECT_NOISE_SEED, CONFIRM_NOISE_SEED = 1, 2


@dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters. Defaults: SAC paper (Haarnoja et al. 2018, arXiv:1812.05905, Table 1)
    unless stated; pytorch_sac = Yarats & Kostrikov's DMC SAC (github.com/denisyarats/pytorch_sac)."""

    hidden_dim: int = 256
    """Units per hidden layer (SAC paper: 256; pytorch_sac uses 1024, 4x slower on CPU)."""
    hidden_depth: int = 2
    """Hidden layers in actor and critics (SAC paper: 2)."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor (SAC paper: 3e-4)."""
    critic_lr: float = 1e-3
    """Adam learning rate of the critics (cleanrl sac_continuous_action q_lr: 1e-3)."""
    alpha_lr: float = 3e-4
    """Adam learning rate of log(temperature) (SAC paper: 3e-4)."""
    init_temperature: float = 0.1
    """Initial entropy temperature (pytorch_sac: 0.1)."""
    discount: float = 0.99
    """Discount factor (SAC paper: 0.99)."""
    tau: float = 0.005
    """Polyak rate of the target critics, applied every update (SAC paper: 0.005)."""
    batch_size: int = 128
    """Transitions per update (CURL paper's walker setting: 128; the SAC paper's 256 costs 1.6x
    more per update on the shared 2-core CPU, where updates are the whole training time)."""
    initial_random_steps: int = 5_000
    """Agent steps of uniform random actions before learning starts (pytorch_sac: 5,000)."""
    log_std_min: float = -5.0
    """Lower bound of the actor's log standard deviation (pytorch_sac: -5)."""
    log_std_max: float = 2.0
    """Upper bound of the actor's log standard deviation (pytorch_sac: 2)."""
    max_agent_steps: int = 300_000
    """Step cap of a run, in agent steps (each is ACTION_REPEAT env steps)."""
    eval_every: int = 5_000
    """Agent steps between evaluations (10 training episodes)."""
    snapshot_every: int = 1_000
    """Agent steps between actor snapshots kept since the last evaluation: when an evaluation
    jumps over the medium band, these are evaluated in order to find the first one inside it."""
    max_minutes: float = 70.0
    """Wall-clock cap of a run; the best checkpoint so far is saved as expert when it is hit."""
    num_threads: int = 1
    """torch CPU threads. Measured: 2 threads give 187 vs 113 updates/s (batch 256) on an idle
    2-core CPU, but drop to ~25 updates/s when other processes load it; 1 thread degrades gently."""


# --------------------------------------------------------------------------- networks


def mlp(in_dim: int, out_dim: int, hidden_dim: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(in_dim, hidden_dim), nn.ReLU()]
        in_dim = hidden_dim
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def squash_log_std(raw: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Bound log_std smoothly into [low, high] (pytorch_sac), so the std never explodes."""
    return low + 0.5 * (high - low) * (torch.tanh(raw) + 1.0)


class Actor(nn.Module):
    """Tanh-Gaussian policy: the MLP outputs mean and log_std of a Gaussian squashed by tanh."""

    def __init__(self, obs_dim: int, action_dim: int, cfg: SACConfig) -> None:
        super().__init__()
        self.trunk = mlp(obs_dim, 2 * action_dim, cfg.hidden_dim, cfg.hidden_depth)
        self.log_std_bounds = (cfg.log_std_min, cfg.log_std_max)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw_log_std = self.trunk(obs).chunk(2, dim=-1)
        return mean, squash_log_std(raw_log_std, *self.log_std_bounds)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised action and its log-probability (tanh change of variables)."""
        mean, log_std = self(obs)
        pre_tanh = mean + log_std.exp() * torch.randn_like(mean)
        gaussian_log_prob = (-0.5 * ((pre_tanh - mean) / log_std.exp()) ** 2 - log_std).sum(-1)
        gaussian_log_prob = gaussian_log_prob - 0.5 * math.log(2 * math.pi) * mean.shape[-1]
        # log(1 - tanh(u)^2) written stably (as in cleanrl / the SAC paper, appendix C).
        log_det = (2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))).sum(-1)
        return torch.tanh(pre_tanh), gaussian_log_prob - log_det


class DoubleCritic(nn.Module):
    """Two independent Q networks (clipped double Q, TD3 / SAC paper)."""

    def __init__(self, obs_dim: int, action_dim: int, cfg: SACConfig) -> None:
        super().__init__()
        self.q1 = mlp(obs_dim + action_dim, 1, cfg.hidden_dim, cfg.hidden_depth)
        self.q2 = mlp(obs_dim + action_dim, 1, cfg.hidden_dim, cfg.hidden_depth)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, action], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


# --------------------------------------------------------------------------- SAC update


@dataclass(frozen=True)
class Batch:
    """A batch of transitions; ``not_done`` is 0 only at a true termination (never for walker)."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    not_done: torch.Tensor


class SAC:
    """Actor, double critic with Polyak targets, learned temperature (target entropy -|A|)."""

    def __init__(self, obs_dim: int, action_dim: int, cfg: SACConfig) -> None:
        self.cfg = cfg
        self.actor = Actor(obs_dim, action_dim, cfg)
        self.critic = DoubleCritic(obs_dim, action_dim, cfg)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(cfg.init_temperature), requires_grad=True)
        self.target_entropy = -float(action_dim)  # SAC paper: -dim(A)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr)

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp().detach()

    def critic_loss(self, batch: Batch) -> torch.Tensor:
        with torch.no_grad():
            next_action, next_log_prob = self.actor.sample(batch.next_obs)
            target_q1, target_q2 = self.critic_target(batch.next_obs, next_action)
            soft_v = torch.min(target_q1, target_q2) - self.alpha * next_log_prob
            target = batch.reward + self.cfg.discount * batch.not_done * soft_v
        q1, q2 = self.critic(batch.obs, batch.action)
        return F.mse_loss(q1, target) + F.mse_loss(q2, target)

    def actor_loss(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        action, log_prob = self.actor.sample(obs)
        q1, q2 = self.critic(obs, action)
        return (self.alpha * log_prob - torch.min(q1, q2)).mean(), log_prob.detach()

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step on critic, actor and temperature, then the target update."""
        critic_loss = self.critic_loss(batch)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        # The critic is not updated by the actor loss: freeze it so no gradients are computed.
        self.critic.requires_grad_(False)
        actor_loss, log_prob = self.actor_loss(batch.obs)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        self.critic.requires_grad_(True)

        alpha_loss = (self.log_alpha.exp() * (-log_prob - self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()

        with torch.no_grad():
            for p, p_target in zip(
                self.critic.parameters(), self.critic_target.parameters(), strict=True
            ):
                p_target.lerp_(p, self.cfg.tau)
        return {
            "critic_loss": critic_loss.item(),
            "actor_loss": actor_loss.item(),
            "alpha": self.alpha.item(),
            "entropy": -log_prob.mean().item(),
        }


# --------------------------------------------------------------------------- replay


class ReplayBuffer:
    """Preallocated float32 transitions; sampled uniformly with a numpy Generator."""

    def __init__(self, obs_dim: int, action_dim: int, capacity: int) -> None:
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros((capacity, action_dim), np.float32)
        self.reward = np.zeros(capacity, np.float32)
        self.not_done = np.zeros(capacity, np.float32)
        self.size = 0

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
    ) -> None:
        i = self.size
        self.obs[i], self.action[i], self.reward[i] = obs, action, reward
        self.next_obs[i], self.not_done[i] = next_obs, 0.0 if terminated else 1.0
        self.size += 1

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        idx = rng.integers(0, self.size, size=batch_size)
        arrays = (self.obs, self.action, self.reward, self.next_obs, self.not_done)
        return Batch(*(torch.from_numpy(a[idx]) for a in arrays))


# --------------------------------------------------------------------------- numpy policy


class NumpyActor:
    """The actor's forward pass in numpy (about 10x faster per call than torch for one state).

    Built from a state dict of the actor's ``trunk``; with :meth:`from_module` the arrays are
    views of the live torch parameters, so a training run acts with its current weights at no
    copying cost, through exactly the code path a loaded checkpoint uses.
    """

    def __init__(
        self, layers: list[tuple[np.ndarray, np.ndarray]], log_std_bounds: tuple[float, float]
    ) -> None:
        self.layers = layers  # (weight (out, in), bias (out,)) per Linear layer
        self.log_std_min, self.log_std_max = log_std_bounds

    @classmethod
    def from_state_dict(cls, trunk_state: dict[str, torch.Tensor], cfg: SACConfig) -> NumpyActor:
        arrays = [t.detach().numpy() for t in trunk_state.values()]
        layers = list(zip(arrays[0::2], arrays[1::2], strict=True))
        return cls(layers, (cfg.log_std_min, cfg.log_std_max))

    @classmethod
    def from_module(cls, actor: Actor, cfg: SACConfig) -> NumpyActor:
        return cls.from_state_dict(actor.trunk.state_dict(keep_vars=True), cfg)

    def mean_log_std(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(state, dtype=np.float32)
        for i, (weight, bias) in enumerate(self.layers):
            x = x @ weight.T + bias
            if i < len(self.layers) - 1:
                x = np.maximum(x, 0.0)
        mean, raw = np.split(x, 2, axis=-1)
        low, high = self.log_std_min, self.log_std_max
        return mean, low + 0.5 * (high - low) * (np.tanh(raw) + 1.0)  # as squash_log_std

    def act(
        self, state: np.ndarray, rng: np.random.Generator, deterministic: bool = False
    ) -> np.ndarray:
        mean, log_std = self.mean_log_std(state)
        if deterministic:
            return np.tanh(mean).astype(np.float32)
        noise = rng.standard_normal(mean.shape).astype(np.float32)
        return np.tanh(mean + np.exp(log_std) * noise).astype(np.float32)


def random_policy_action(rng: np.random.Generator, action_dim: int = 6) -> np.ndarray:
    """Uniform random action in [-1, 1], float32 (the ``random`` behaviour policy)."""
    return rng.uniform(-1.0, 1.0, size=action_dim).astype(np.float32)


# --------------------------------------------------------------------------- evaluation

ActFn = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class EvalResult:
    """Returns of one evaluation, with what is needed to reproduce it."""

    returns: tuple[float, ...]
    seeds: tuple[int, ...]
    noise_seed: int

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "std": self.std,
            "episodes": len(self.returns),
            "returns": list(self.returns),
            "eval_seeds": list(self.seeds),
            "noise_seed": self.noise_seed,
        }


def make_state_env(**kwargs: Any) -> gym.Env:
    import benchmark  # noqa: F401  (registers the ids)

    return gym.make(STATE_ENV_ID, **kwargs)


def run_episode(env: gym.Env, act: ActFn, seed: int, rng: np.random.Generator) -> float:
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(act(obs["state"], rng))
        total, done = total + float(reward), terminated or truncated
    return total


def evaluate(env: gym.Env, act: ActFn, seeds: tuple[int, ...], noise_seed: int) -> EvalResult:
    """Episodes from fixed reset seeds; the action noise comes from one seeded Generator."""
    rng = np.random.default_rng(noise_seed)
    returns = tuple(run_episode(env, act, seed, rng) for seed in seeds)
    return EvalResult(returns, seeds, noise_seed)


def random_act(state: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return random_policy_action(rng)


# --------------------------------------------------------------------------- checkpoints


class CheckpointError(RuntimeError):
    """A behaviour-policy checkpoint is missing or cannot be read."""


def save_checkpoint(
    path: Path,
    actor_state: dict[str, torch.Tensor],
    cfg: SACConfig,
    obs_dim: int,
    action_dim: int,
    meta: dict[str, Any],
) -> None:
    """The actor's weights only (float32, a few hundred KB), its config and dims."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone().float().contiguous() for k, v in actor_state.items()}
    payload = {
        "actor": state,
        "config": dataclasses.asdict(cfg),
        "obs_dim": obs_dim,
        "action_dim": action_dim,
        "meta": meta,
    }
    torch.save(payload, path)


class BehaviourPolicy:
    """A trained SAC actor loaded from a checkpoint, acting with numpy noise (reproducible)."""

    def __init__(
        self, actor: NumpyActor, obs_dim: int, action_dim: int, meta: dict[str, Any]
    ) -> None:
        self._actor = actor
        self.obs_dim, self.action_dim, self.meta = obs_dim, action_dim, meta

    @classmethod
    def load(cls, path: str | Path) -> BehaviourPolicy:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"behaviour policy checkpoint not found: {path}")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            cfg = SACConfig(**payload["config"])
            actor = Actor(payload["obs_dim"], payload["action_dim"], cfg)
            actor.load_state_dict(payload["actor"])
        except Exception as error:  # any unreadable file: name the path, keep the cause
            raise CheckpointError(
                f"cannot read behaviour policy checkpoint {path}: {type(error).__name__}: {error}"
            ) from error
        numpy_actor = NumpyActor.from_state_dict(actor.trunk.state_dict(), cfg)
        return cls(numpy_actor, payload["obs_dim"], payload["action_dim"], payload["meta"])

    def act(
        self, state: np.ndarray, rng: np.random.Generator, deterministic: bool = False
    ) -> np.ndarray:
        """state float64 (obs_dim,) -> action float32 (action_dim,) in [-1, 1].

        The Gaussian noise is drawn from ``rng``, so collection is reproducible from a data seed.
        """
        return self._actor.act(state, rng, deterministic)


def load_reference_returns(path: str | Path = RETURNS_FILE) -> dict[str, Any]:
    """The measured returns of random / medium / expert (``datasets/policies/returns.json``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference returns not found: {path}")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- training


def episode_seed(run_seed: int, episode: int) -> int:
    """Reset seed of training episode ``episode``: deterministic, below 2**32 (shimmy's bound)."""
    return int(np.random.SeedSequence([run_seed, episode]).generate_state(1)[0])


@dataclass
class EpisodeLog:
    """What a training episode needs to be replayed without the policy."""

    seed: int
    actions: list[np.ndarray] = dataclasses.field(default_factory=list)
    rewards: list[float] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class Snapshot:
    """The actor's weights at an episode boundary."""

    agent_steps: int
    episodes: int
    actor_state: dict[str, torch.Tensor]


def save_replay(path: Path, episodes: list[EpisodeLog]) -> dict[str, int]:
    """Whole episodes as reset seeds + float32 actions (+ rewards, to verify a replay)."""
    np.savez_compressed(
        path,
        episode_seeds=np.array([e.seed for e in episodes], np.int64),
        episode_lengths=np.array([len(e.actions) for e in episodes], np.int64),
        actions=np.concatenate([np.stack(e.actions) for e in episodes]).astype(np.float32),
        rewards=np.concatenate([np.array(e.rewards) for e in episodes]).astype(np.float32),
    )
    return {"episodes": len(episodes), "transitions": sum(len(e.actions) for e in episodes)}


class Trainer:
    """Runs SAC on the state env and picks the medium and expert checkpoints along the way."""

    def __init__(
        self,
        cfg: SACConfig,
        seed: int,
        out: Path,
        command: str,
        env_kwargs: dict[str, Any] | None = None,  # e.g. a short time_limit_s, for tests
    ) -> None:
        self.cfg, self.seed, self.out, self.command = cfg, seed, out, command
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.env = make_state_env(**(env_kwargs or {}))
        self.eval_env = make_state_env(**(env_kwargs or {}))
        self.obs_dim = self.env.observation_space["state"].shape[0]
        self.action_dim = self.env.action_space.shape[0]
        self.agent = SAC(self.obs_dim, self.action_dim, cfg)
        self.policy = NumpyActor.from_module(self.agent.actor, cfg)
        self.buffer = ReplayBuffer(self.obs_dim, self.action_dim, cfg.max_agent_steps)
        self.episodes: list[EpisodeLog] = []
        self.agent_steps, self.updates, self.start = 0, 0, time.monotonic()
        self.snapshots: list[Snapshot] = []
        self.best: tuple[float, Snapshot] | None = None
        self.results: dict[str, Any] = {}
        self.last_metrics: dict[str, float] = {}

    # -- acting and learning

    def act(self, state: np.ndarray) -> np.ndarray:
        if self.agent_steps < self.cfg.initial_random_steps:
            return random_policy_action(self.rng, self.action_dim)
        return self.policy.act(state, self.rng)

    def train_episode(self) -> float:
        log = EpisodeLog(seed=episode_seed(self.seed, len(self.episodes)))
        obs, _ = self.env.reset(seed=log.seed)
        done = False
        while not done:
            action = self.act(obs["state"])
            next_obs, reward, terminated, truncated, _ = self.env.step(action)
            self.buffer.add(obs["state"], action, reward, next_obs["state"], terminated)
            log.actions.append(action)
            log.rewards.append(float(reward))
            obs, done = next_obs, terminated or truncated
            self.agent_steps += 1
            if self.agent_steps >= self.cfg.initial_random_steps:
                batch = self.buffer.sample(self.cfg.batch_size, self.rng)
                self.last_metrics = self.agent.update(batch)
                self.updates += 1
        self.episodes.append(log)
        return float(sum(log.rewards))

    def snapshot(self) -> Snapshot:
        state = {k: v.detach().clone() for k, v in self.agent.actor.state_dict().items()}
        return Snapshot(self.agent_steps, len(self.episodes), state)

    def snapshot_act(self, snap: Snapshot) -> ActFn:
        return NumpyActor.from_state_dict(_trunk_state(snap.actor_state), self.cfg).act

    # -- checkpoint selection

    def minutes(self) -> float:
        return (time.monotonic() - self.start) / 60.0

    def log(self, message: str) -> None:
        print(f"[{self.minutes():6.1f} min, {self.agent_steps:7d} steps] {message}", flush=True)

    def save(self, name: str, snap: Snapshot, selection: EvalResult) -> EvalResult:
        """Write the checkpoint, reload it from disk and evaluate it on the confirmation seeds."""
        meta = {"name": name, "seed": self.seed, **steps_meta(snap.agent_steps)}
        path = self.out / f"{name}.pt"
        save_checkpoint(path, snap.actor_state, self.cfg, self.obs_dim, self.action_dim, meta)
        confirm = evaluate(
            self.eval_env, BehaviourPolicy.load(path).act, CONFIRM_SEEDS, CONFIRM_NOISE_SEED
        )
        self.results[name] = {
            **confirm.to_json(),
            **meta,
            "episodes_trained": snap.episodes,
            "selection_eval": selection.to_json(),
        }
        self.log(f"saved {path}: selection {selection.mean:.1f}, confirmation {confirm.mean:.1f}")
        return confirm

    def try_medium(self, candidates: list[Snapshot]) -> bool:
        """Evaluate candidates in order; the first in the band and confirmed in it is medium."""
        for snap in candidates:
            selection = evaluate(
                self.eval_env, self.snapshot_act(snap), SELECT_SEEDS, SELECT_NOISE_SEED
            )
            self.log(f"medium candidate at {snap.agent_steps}: {selection.mean:.1f}")
            if in_band(selection.mean) and in_band(self.save("medium", snap, selection).mean):
                replay = save_replay(self.out / "medium_replay.npz", self.episodes[: snap.episodes])
                self.results["medium_replay"] = {**replay, **steps_meta(snap.agent_steps)}
                return True
        return False

    def evaluate_now(self) -> bool:
        """Periodic evaluation; returns True once the expert is saved and confirmed."""
        current = self.snapshot()
        selection = evaluate(
            self.eval_env, self.snapshot_act(current), SELECT_SEEDS, SELECT_NOISE_SEED
        )
        self.log(f"eval {selection.mean:.1f} ± {selection.std:.1f} | {self.progress()}")
        if self.best is None or selection.mean > self.best[0]:
            self.best = (selection.mean, current)
        if "medium" not in self.results and selection.mean >= MEDIUM_BAND[0]:
            # Earlier snapshots first: the band may have been crossed since the last evaluation.
            self.try_medium([*self.snapshots, current])
        self.snapshots = []
        if selection.mean >= EXPERT_MIN:
            if "medium" not in self.results:
                self.log("SHORTFALL: expert band reached with no confirmed medium checkpoint")
            return self.save("expert", current, selection).mean >= EXPERT_MIN
        return False

    def progress(self) -> str:
        rate = self.updates / max(time.monotonic() - self.start, 1e-9)
        metrics = " ".join(f"{k} {v:.3g}" for k, v in self.last_metrics.items())
        return f"episodes {len(self.episodes)} | {rate:.0f} updates/s (incl. eval) | {metrics}"

    def run(self) -> dict[str, Any]:
        self.results["random"] = evaluate(
            self.eval_env, random_act, CONFIRM_SEEDS, CONFIRM_NOISE_SEED
        ).to_json()
        self.log(f"random policy: {self.results['random']['mean']:.1f}")
        while self.agent_steps < self.cfg.max_agent_steps and self.minutes() < self.cfg.max_minutes:
            train_return = self.train_episode()
            if self.agent_steps % self.cfg.eval_every == 0:
                self.log(f"train return {train_return:.1f}")
                if self.evaluate_now():
                    break
            elif self.agent_steps % self.cfg.snapshot_every == 0 and "medium" not in self.results:
                self.snapshots.append(self.snapshot())
        if "expert" not in self.results and self.best is not None:
            self.log("step or time cap reached before the expert band: saving the best checkpoint")
            best = self.best[1]
            selection = evaluate(
                self.eval_env, self.snapshot_act(best), SELECT_SEEDS, SELECT_NOISE_SEED
            )
            self.save("expert", best, selection)
        return self.write_returns()

    def write_returns(self) -> dict[str, Any]:
        summary = {
            **self.results,
            "training": {
                "seed": self.seed,
                "env_id": STATE_ENV_ID,
                "action_repeat": ACTION_REPEAT,
                "config": dataclasses.asdict(self.cfg),
                "torch_version": torch.__version__,
                "command": self.command,
                "wall_minutes": round(self.minutes(), 2),
                "updates": self.updates,
                **steps_meta(self.agent_steps),
                "medium_band": list(MEDIUM_BAND),
                "expert_min": EXPERT_MIN,
                "eval_actions": "stochastic (sampled from the policy, as the datasets are)",
            },
        }
        (self.out / "returns.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary


def _trunk_state(actor_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("trunk."): v for k, v in actor_state.items() if k.startswith("trunk.")}


def in_band(value: float) -> bool:
    return MEDIUM_BAND[0] <= value <= MEDIUM_BAND[1]


def steps_meta(agent_steps: int) -> dict[str, int]:
    return {"agent_steps": agent_steps, "env_steps": agent_steps * ACTION_REPEAT}


# --------------------------------------------------------------------------- CLI


def config_fields() -> Iterator[dataclasses.Field]:
    yield from dataclasses.fields(SACConfig)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The train options are generated from :class:`SACConfig`, so ``--help`` documents them."""
    parser = argparse.ArgumentParser(prog="python -m benchmark.behaviour", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train SAC and save the behaviour policies")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=Path, default=POLICY_DIR)
    for field in config_fields():
        flag = "--" + field.name.replace("_", "-")
        train.add_argument(flag, type=type(field.default), default=field.default)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    cfg = SACConfig(**{f.name: getattr(args, f.name) for f in config_fields()})
    torch.set_num_threads(cfg.num_threads)
    args.out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "-m", "benchmark.behaviour", *argv])
    summary = Trainer(cfg, args.seed, args.out, command).run()
    print(json.dumps({k: v.get("mean") for k, v in summary.items() if "mean" in v}))


if __name__ == "__main__":
    main()
