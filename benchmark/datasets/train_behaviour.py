"""``python -m benchmark.datasets train-behaviour``: train behaviour policies with the state SAC.

As in V-D4RL, the datasets are collected by SAC agents trained on proprioceptive states (the
``state`` observation of ``vorb/walker-walk-state-v0``, action repeat 2, no rendering). The agent
and its loop are the state track's online SAC baseline (``sac-state-online``: ``SACCURLAgent``
with :func:`behaviour_sac_config` inside ``OnlineTrainer``); this module only picks checkpoints
along the way and writes them:

- ``medium``: the first actor snapshot (every ``snapshot_every`` agent steps) whose 20-episode
  return with sampled actions is in the medium band (400-550), confirmed in the band on fresh
  episodes;
- ``medium_replay.npz``: the training episodes up to that snapshot, as reset seeds and actions
  (and rewards, to check a replay), so the pixel env can replay them without the policy;
- ``expert``: the first periodic evaluation with a return >= 900, confirmed on fresh episodes
  (at the step or time cap: the best evaluation so far);
- ``returns.json``: the confirmed returns of random, medium and expert, and how they were made.

The committed policies in ``datasets/policies/`` were trained by the previous trainer (commit
32709b4), a separate SAC with the same hyperparameters and these same selection rules; this
command trains new ones with the same selection rules. Its runs differ from that trainer's: the
training episodes reset with the online trainer's seeds (``seed * 100_003 + i``), and the update
is the baseline's (simultaneous losses, orthogonal initialisation). The committed files are not
retrained: the datasets' recipes and digests are made from them.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from baselines.contract import Count, Positive, check
from benchmark.atomic import atomic_write, atomic_write_text
from benchmark.data.envs import STATE_ENV_ID
from benchmark.datasets.policies import (
    POLICY_DIR,
    BehaviourPolicy,
    NumpyActor,
    random_policy_action,
    save_checkpoint,
)
from benchmark.harness import registry

BASELINE = "sac-state-online"  # the registered baseline whose agent and loop train the policies
POLICY_FILES = ("medium.pt", "expert.pt", "medium_replay.npz", "returns.json")  # what a run writes

# Evaluation reset seeds: fixed, far from the training episodes' (``seed * 100_003 + i``).
# "select" picks checkpoints; "confirm" re-evaluates the saved file on fresh episodes, so the
# reported return is not inflated by having picked the best of several noisy evaluations.
EVAL_EPISODES = 20
SELECT_SEEDS = tuple(range(1_000_000, 1_000_000 + EVAL_EPISODES))
CONFIRM_SEEDS = tuple(range(2_000_000, 2_000_000 + EVAL_EPISODES))
SELECT_NOISE_SEED, CONFIRM_NOISE_SEED = 1, 2


def behaviour_sac_config(**overrides: Any) -> Any:
    """The state SAC config (:data:`BASELINE`'s) the committed policies were trained with
    (commit 32709b4's ``SACConfig``; sources as its docstrings gave them), with ``overrides``."""
    trained_with = {
        "batch_size": 128,  # CURL paper's walker setting (SAC paper's 256: 1.6x slower on CPU)
        "critic_lr": 1e-3,  # cleanrl sac_continuous_action q_lr
        "actor_lr": 3e-4,  # SAC paper (Haarnoja et al. 2018, arXiv:1812.05905), Table 1
        "alpha_lr": 3e-4,  # SAC paper, Table 1
        "init_temperature": 0.1,  # pytorch_sac (github.com/denisyarats/pytorch_sac)
        "critic_tau": 0.005,  # SAC paper, Table 1; every update
        "critic_target_update_freq": 1,  # SAC paper, Table 1
        "actor_update_freq": 1,  # SAC paper: one actor step per critic step
        "hidden_dim": 256,  # SAC paper, Table 1 (pytorch_sac: 1024, 4x slower on CPU)
        "hidden_depth": 2,  # SAC paper, Table 1
        "discount": 0.99,  # SAC paper, Table 1
        "log_std_min": -5.0,  # pytorch_sac
        "log_std_max": 2.0,  # pytorch_sac
        "initial_random_steps": 5_000,  # pytorch_sac
    }
    return registry.get(BASELINE).default_config(**{**trained_with, **overrides})


@dataclass(frozen=True)
class BehaviourTraining:
    """How long a run trains and how it picks checkpoints (the SAC itself:
    :func:`behaviour_sac_config`)."""

    max_agent_steps: Count = 300_000
    """Step cap of a run, in agent steps (each is 2 env steps: the env's action repeat)."""
    eval_every: Count = 5_000
    """Agent steps between evaluations (10 training episodes); a multiple of the episode."""
    snapshot_every: Count = 1_000
    """Agent steps between actor snapshots kept since the last evaluation: when an evaluation
    jumps over the medium band, these are evaluated in order to find the first one inside it."""
    max_minutes: Positive = 70.0
    """Wall-clock cap of a run; the best checkpoint so far is saved as expert when it is hit."""
    num_threads: Count = 1
    """torch CPU threads (measured with the previous trainer: 2 threads give 187 vs 113 updates/s
    on an idle 2-core CPU, but ~25 when other processes load it; 1 thread degrades gently)."""
    time_limit_s: Positive = 25.0
    """Episode length in seconds (dm_control walker's default 25 s = 500 agent steps; shorter
    in tests). Evaluations use the same length."""
    medium_band: tuple[float, float] = (400.0, 550.0)
    """Return band of ``medium`` (V-D4RL: medium ~ 40-55 % of expert)."""
    expert_min: float = 900.0
    """Least return of ``expert`` (V-D4RL: expert ~ 900+)."""

    def in_band(self, value: float) -> bool:
        return self.medium_band[0] <= value <= self.medium_band[1]


# -- evaluation ---------------------------------------------------------------------------------
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

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "std": float(np.std(self.returns)),
            "episodes": len(self.returns),
            "returns": list(self.returns),
            "eval_seeds": list(self.seeds),
            "noise_seed": self.noise_seed,
        }


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


# -- what the training env saw ------------------------------------------------------------------
@dataclass
class EpisodeLog:
    """What a training episode needs to be replayed without the policy."""

    seed: int
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)


class EpisodeRecorder(gym.Wrapper):
    """Records each episode's reset seed, actions and rewards exactly as the env received them
    (the online trainer picks the seeds), until :meth:`stop`."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.episodes: list[EpisodeLog] = []
        self.recording = True

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> Any:
        if seed is None:
            raise ValueError("a recorded episode needs a reset seed, to be replayable")
        if self.recording:
            self.episodes.append(EpisodeLog(int(seed)))
        return super().reset(seed=seed, options=options)

    def step(self, action: np.ndarray) -> Any:
        result = super().step(action)
        if self.recording:
            self.episodes[-1].actions.append(np.array(action, dtype=np.float32))
            self.episodes[-1].rewards.append(float(result[1]))
        return result

    def stop(self) -> None:
        self.recording, self.episodes = False, []


def save_replay(path: Path, episodes: list[EpisodeLog]) -> dict[str, int]:
    """Whole episodes as reset seeds + float32 actions (+ rewards, to verify a replay)."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        episode_seeds=np.array([e.seed for e in episodes], np.int64),
        episode_lengths=np.array([len(e.actions) for e in episodes], np.int64),
        actions=np.concatenate([np.stack(e.actions) for e in episodes]).astype(np.float32),
        rewards=np.concatenate([np.array(e.rewards) for e in episodes]).astype(np.float32),
    )
    atomic_write(path, lambda file: file.write(buffer.getvalue()))
    return {"episodes": len(episodes), "transitions": sum(len(e.actions) for e in episodes)}


# -- the run ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """The actor's weights at an episode boundary."""

    agent_steps: int
    episodes: int
    actor_state: dict[str, Any]


class BehaviourTrainer:
    """The state SAC baseline's online loop, with medium and expert picked along the way."""

    def __init__(
        self, sac: Any, plan: BehaviourTraining, seed: int, out: Path, command: str
    ) -> None:
        import torch

        from benchmark.harness.training import make_trainer  # torch: only when training

        check(sac, "train-behaviour: the SAC config")
        check(plan, "train-behaviour")
        self.sac, self.plan, self.seed, self.out, self.command = sac, plan, seed, out, command
        torch.set_num_threads(plan.num_threads)
        self.recorder = EpisodeRecorder(make_state_env(plan.time_limit_s))
        self.eval_env = make_state_env(plan.time_limit_s)
        self._check_schedule(self.recorder.unwrapped.max_episode_steps)
        spec = registry.get(BASELINE)
        self.trainer = make_trainer(spec, sac, self.recorder, seed, torch.device("cpu"))
        self.obs_dim = self.recorder.observation_space["state"].shape[0]
        self.action_dim = self.trainer.action_dim
        self.action_repeat = self.trainer.action_repeat
        self.start = time.monotonic()
        self.snapshots: list[Snapshot] = []
        self.best: tuple[float, Snapshot] | None = None
        self.results: dict[str, Any] = {}
        self.last_metrics: dict[str, float] = {}

    def _check_schedule(self, episode_steps: int) -> None:
        """Evaluations and snapshots happen at episode ends: their intervals must be multiples."""
        for name in ("eval_every", "snapshot_every"):
            value = getattr(self.plan, name)
            if value <= 0 or value % episode_steps:
                raise ValueError(
                    f"{name}={value} must be a positive multiple of the episode's "
                    f"{episode_steps} agent steps (time_limit_s={self.plan.time_limit_s})"
                )

    # -- training
    def train_episode(self) -> None:
        """Trainer steps (one env step and, after the random phase, one update) to episode end."""
        while True:
            metrics = self.trainer.step()
            if metrics:
                self.last_metrics = metrics
            if self.trainer.at_episode_boundary:
                return

    @property
    def agent_steps(self) -> int:
        return self.trainer.agent_steps

    def snapshot(self) -> Snapshot:
        actor = self.trainer.agent.actor
        state = {k: v.detach().clone() for k, v in actor.state_dict().items()}
        return Snapshot(self.agent_steps, self.trainer.episodes, state)

    def snapshot_act(self, snap: Snapshot) -> ActFn:
        """The snapshot acting through the code path its saved checkpoint will use."""
        bounds = (self.sac.log_std_min, self.sac.log_std_max)
        return NumpyActor.from_state_dict(snap.actor_state, bounds).act

    # -- checkpoint selection
    def minutes(self) -> float:
        return (time.monotonic() - self.start) / 60.0

    def log(self, message: str) -> None:
        print(f"[{self.minutes():6.1f} min, {self.agent_steps:7d} steps] {message}", flush=True)

    def steps_meta(self, agent_steps: int) -> dict[str, int]:
        return {"agent_steps": agent_steps, "env_steps": agent_steps * self.action_repeat}

    def select(self, snap: Snapshot) -> EvalResult:
        return evaluate(self.eval_env, self.snapshot_act(snap), SELECT_SEEDS, SELECT_NOISE_SEED)

    def save(self, name: str, snap: Snapshot, selection: EvalResult) -> EvalResult:
        """Write the checkpoint, reload it from disk and evaluate it on the confirmation seeds."""
        meta = {"name": name, "seed": self.seed, **self.steps_meta(snap.agent_steps)}
        path = self.out / f"{name}.pt"
        config = dataclasses.asdict(self.sac)
        save_checkpoint(path, snap.actor_state, config, self.obs_dim, self.action_dim, meta)
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
            selection = self.select(snap)
            self.log(f"medium candidate at {snap.agent_steps}: {selection.mean:.1f}")
            if self.plan.in_band(selection.mean) and self.plan.in_band(
                self.save("medium", snap, selection).mean
            ):
                episodes = self.recorder.episodes[: snap.episodes]
                replay = save_replay(self.out / "medium_replay.npz", episodes)
                self.results["medium_replay"] = {**replay, **self.steps_meta(snap.agent_steps)}
                self.recorder.stop()  # the replay is written: later episodes are not needed
                return True
        return False

    def evaluate_now(self) -> bool:
        """Periodic evaluation; returns True once the expert is saved and confirmed."""
        current = self.snapshot()
        selection = self.select(current)
        self.log(f"eval {selection.mean:.1f} | {self.progress()}")
        if self.best is None or selection.mean > self.best[0]:
            self.best = (selection.mean, current)
        if "medium" not in self.results and selection.mean >= self.plan.medium_band[0]:
            # Earlier snapshots first: the band may have been crossed since the last evaluation.
            self.try_medium([*self.snapshots, current])
        self.snapshots = []
        if selection.mean >= self.plan.expert_min:
            if "medium" not in self.results:
                self.log("SHORTFALL: expert band reached with no confirmed medium checkpoint")
            return self.save("expert", current, selection).mean >= self.plan.expert_min
        return False

    def progress(self) -> str:
        rate = self.trainer.updates / max(time.monotonic() - self.start, 1e-9)
        metrics = " ".join(f"{k} {float(v):.3g}" for k, v in self.last_metrics.items())
        return f"episodes {self.trainer.episodes} | {rate:.0f} updates/s (incl. eval) | {metrics}"

    def run(self) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        random = evaluate(self.eval_env, random_act, CONFIRM_SEEDS, CONFIRM_NOISE_SEED)
        self.results["random"] = random.to_json()
        self.log(f"random policy: {random.mean:.1f}")
        plan = self.plan
        while self.agent_steps < plan.max_agent_steps and self.minutes() < plan.max_minutes:
            self.train_episode()
            if self.agent_steps % plan.eval_every == 0:
                if self.evaluate_now():
                    break
            elif self.agent_steps % plan.snapshot_every == 0 and "medium" not in self.results:
                self.snapshots.append(self.snapshot())
        if "expert" not in self.results and self.best is not None:
            self.log("step or time cap reached before the expert band: saving the best checkpoint")
            best = self.best[1]
            self.save("expert", best, self.select(best))
        return self.write_returns()

    def write_returns(self) -> dict[str, Any]:
        import torch

        summary = {
            **self.results,
            "training": {
                "seed": self.seed,
                "env_id": STATE_ENV_ID,
                "action_repeat": self.action_repeat,
                "baseline": BASELINE,
                "config": dataclasses.asdict(self.sac),
                "plan": dataclasses.asdict(self.plan),
                "torch_version": torch.__version__,
                "command": self.command,
                "wall_minutes": round(self.minutes(), 2),
                "updates": self.trainer.updates,
                **self.steps_meta(self.agent_steps),
                "eval_actions": "stochastic (sampled from the policy, as the datasets are)",
            },
        }
        atomic_write_text(self.out / "returns.json", json.dumps(summary, indent=2) + "\n")
        return summary


def make_state_env(time_limit_s: float) -> gym.Env:
    return gym.make(STATE_ENV_ID, time_limit_s=time_limit_s)


# -- the normalised scale's 100 ------------------------------------------------------------------
DETERMINISTIC_KEY = "deterministic"  # returns.json: beside a policy's sampled-action return


def deterministic_return(
    policy_file: str | Path,
    seeds: tuple[int, ...] = CONFIRM_SEEDS,
    time_limit_s: float = BehaviourTraining.time_limit_s,
) -> EvalResult:
    """A behaviour policy's return with deterministic actions (tanh of the mean), as every
    benchmark evaluation acts, on the confirmation seeds its sampled return was measured on: the
    two measurements differ only in how the actions are chosen. The normalised scale's 100 is
    the sampled return (the datasets' ``ref_max_score``), so a policy as good as the expert but
    acting deterministically can score above 100."""
    policy = BehaviourPolicy.load(policy_file)
    env = make_state_env(time_limit_s)
    try:
        act = functools.partial(policy.act, deterministic=True)
        return evaluate(env, act, seeds, CONFIRM_NOISE_SEED)  # the noise seed is never drawn from
    finally:
        env.close()


def record_deterministic_return(
    name: str,
    command: str,
    policy_dir: str | Path = POLICY_DIR,
    seeds: tuple[int, ...] = CONFIRM_SEEDS,
    time_limit_s: float = BehaviourTraining.time_limit_s,
) -> dict[str, Any]:
    """Measure ``<policy_dir>/<name>.pt`` with :func:`deterministic_return` and write it into
    ``returns.json`` as ``<name>.deterministic``, beside the sampled return it leaves alone
    (``seeds`` and ``time_limit_s``: smaller in tests)."""
    policy_dir = Path(policy_dir)
    path = policy_dir / "returns.json"
    returns = json.loads(path.read_text())
    if name not in returns or "mean" not in returns[name]:
        measured = [k for k, v in returns.items() if isinstance(v, dict) and "mean" in v]
        raise ValueError(f"no sampled return of {name!r} in {path}; policies: {measured}")
    result = deterministic_return(policy_dir / f"{name}.pt", seeds, time_limit_s)
    returns[name][DETERMINISTIC_KEY] = {
        **result.to_json(),
        "actions": "deterministic (tanh of the mean), as every benchmark evaluation acts",
        "command": command,
    }
    atomic_write_text(path, json.dumps(returns, indent=2) + "\n")
    return returns[name][DETERMINISTIC_KEY]
