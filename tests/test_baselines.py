"""Every registered baseline on real data: finite updates, a falling loss, exact resume, seeding.

Offline baselines train on a :class:`FrameReplay` of short real episodes of the pixel walker;
online ones run through ``make_trainer`` with the real environment. Networks are shrunk
(``hidden_dim``, batch size) with ``dataclasses.replace`` to keep the suite quick on 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import benchmark  # noqa: F401  (registers the ids)
from baselines.common.augment import random_crop
from baselines.common.sac import td_target
from baselines.common.sac_agent import curl_logits
from benchmark.data.envs import ENV_ID, STATE_ENV_ID
from benchmark.data.sampler import FrameReplay, TransitionBatch
from benchmark.data.state_replay import StateNormalizer, StateReplay
from benchmark.harness import registry
from benchmark.harness.training import make_trainer, seed_everything

DEVICE = torch.device("cpu")
EPISODES, ACTION_DIM = 6, 6
POSE_DIMS = 15  # walker state: 14 body orientations + torso height (what one frame shows)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    """One intra-op thread: the networks here are tiny, and on a shared 2-core machine a
    second thread mostly waits for the first (measured several times slower under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def controller(state: np.ndarray) -> np.ndarray:
    """A fixed "expert-ish" controller: a deterministic function of the walker's pose, which
    the frames show, so a pixel policy can learn it."""
    gains = np.random.default_rng(1).normal(size=(ACTION_DIM, POSE_DIMS))
    return np.tanh(gains @ state[:POSE_DIMS]).astype(np.float32)


@pytest.fixture(scope="module")
def episodes() -> list[dict[str, np.ndarray]]:
    """Real 20-step episodes of the pixel walker, acted by the controller plus N(0, 0.05) noise."""
    env = gym.make(ENV_ID, time_limit_s=1.0)
    rng = np.random.default_rng(0)
    collected = []
    for episode in range(EPISODES):
        obs, _ = env.reset(seed=episode)
        frames, states, actions, rewards, terminations = [obs["pixels"]], [obs["state"]], [], [], []
        done = False
        while not done:
            noise = rng.normal(scale=0.05, size=ACTION_DIM)
            action = np.clip(controller(obs["state"]) + noise, -1, 1).astype(np.float32)
            obs, reward, terminated, truncated, _ = env.step(action)
            frames.append(obs["pixels"])
            states.append(obs["state"])
            actions.append(action)
            rewards.append(reward)
            terminations.append(terminated)
            done = terminated or truncated
        collected.append(
            {
                "frames": np.stack(frames),
                "states": np.stack(states),
                "actions": np.stack(actions),
                "rewards": np.asarray(rewards, dtype=np.float32),
                "terminations": np.asarray(terminations),
            }
        )
    env.close()
    return collected


def replay_of(episodes: list[dict[str, np.ndarray]]) -> FrameReplay:
    replay = FrameReplay(sum(len(e["actions"]) for e in episodes), (3, 84, 84), ACTION_DIM)
    for e in episodes:
        replay.add_episode(e["frames"], e["actions"], e["rewards"], e["terminations"])
    return replay


def state_replay_of(episodes: list[dict[str, np.ndarray]]) -> StateReplay:
    """The same episodes' states, normalised by their own mean and std (as from a dataset)."""
    normalizer = StateNormalizer.of(np.concatenate([e["states"][:-1] for e in episodes]))
    total = sum(len(e["actions"]) for e in episodes)
    replay = StateReplay(total, episodes[0]["states"].shape[1], ACTION_DIM, normalizer=normalizer)
    for e in episodes:
        replay.add_episode(e["states"], e["actions"], e["rewards"], e["terminations"])
    return replay


@pytest.fixture()
def replay(request: pytest.FixtureRequest, episodes: list[dict[str, np.ndarray]]) -> Any:
    """The episodes as the test's baseline sees them: frames, or states for the state track."""
    name = getattr(request.node, "callspec", None) and request.node.callspec.params.get("name")
    if name and registry.get(name).obs_kind == "state":
        return state_replay_of(episodes)
    return replay_of(episodes)


def sample_obs(replay: Any, index: int) -> np.ndarray:
    """One observation of the replay, as an agent acts on it."""
    generator = torch.Generator().manual_seed(index)
    return replay.sample(1, generator).obs[0].numpy()


def small_config(spec: registry.BaselineSpec, **overrides: Any) -> Any:
    """The registered defaults, shrunk for a quick test."""
    config = spec.default_config()
    fields = {f.name for f in dataclasses.fields(config)}
    small = {"batch_size": 8, "hidden_dim": 32, "num_filters": 8}
    if "initial_random_steps" in fields:
        small |= {"initial_random_steps": 15, "replay_capacity": 200}
    small = {name: value for name, value in small.items() if name in fields}  # pixels: conv
    return dataclasses.replace(config, **(small | overrides))


def trainer_for(name: str, replay: FrameReplay, seed: int = 0, **overrides: Any) -> Any:
    spec = registry.get(name)
    env_id = STATE_ENV_ID if spec.obs_kind == "state" else ENV_ID
    source = replay if spec.offline else gym.make(env_id, time_limit_s=1.0)
    return make_trainer(spec, small_config(spec, **overrides), source, seed, DEVICE)


def close(trainer: Any) -> None:
    env = getattr(trainer, "env", None)
    if env is not None:
        env.close()


def tensors(state: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor of a nested state dict, by path."""
    if isinstance(state, torch.Tensor):
        return {prefix: state}
    if isinstance(state, dict):
        items = state.items()
    elif isinstance(state, list | tuple):
        items = enumerate(state)
    else:
        return {}
    found: dict[str, torch.Tensor] = {}
    for key, value in items:
        found |= tensors(value, f"{prefix}/{key}")
    return found


def assert_same_state(first: dict[str, Any], second: dict[str, Any]) -> None:
    left, right = tensors(first), tensors(second)
    assert left.keys() == right.keys()
    differing = [key for key in left if not torch.equal(left[key], right[key])]
    assert not differing, f"differ: {differing[:5]}"


def steps_per_chunk(trainer: Any) -> int:
    """Offline: a few updates. Online: one 20-step episode (checkpoints fall on its boundary);
    the first 15 steps act at random, so the first episode has 5 updates."""
    return 20 if hasattr(trainer, "env") else 3


@pytest.mark.parametrize("name", registry.names())
def test_updates_are_finite_and_actions_bounded(name: str, replay: FrameReplay) -> None:
    trainer = trainer_for(name, replay)
    metrics: dict[str, float] = {}
    for _ in range(steps_per_chunk(trainer)):
        metrics |= trainer.step()
    close(trainer)
    assert metrics and all(np.isfinite(v) for v in metrics.values()), metrics
    obs = sample_obs(replay, 5)
    for deterministic in (True, False):
        action = trainer.agent.act(obs, deterministic=deterministic)
        assert action.shape == (ACTION_DIM,) and np.all(np.abs(action) <= 1)


@pytest.mark.parametrize("name", registry.names())
def test_loss_falls_on_a_fixed_batch(name: str, replay: FrameReplay) -> None:
    spec = registry.get(name)
    if not spec.offline:
        pytest.skip("the same agent class as its offline registration, tested there")
    torch.manual_seed(0)
    agent = spec.agent_class()(small_config(spec), replay.obs_shape, ACTION_DIM, DEVICE)
    batch = replay.sample(16, torch.Generator().manual_seed(0))
    key = {"bc": "bc_loss"}.get(spec.family, "critic_loss")
    if name == "cql-state":
        # CORL's small critic lr and a TD error that starts near 0 (small rewards, Q near 0)
        # move little in 30 updates: the state CQL's whole critic objective, TD error plus
        # penalty, at 10x its lr (measured: 131 -> 70-90).
        agent = spec.agent_class()(
            small_config(spec, critic_lr=3e-3), replay.obs_shape, ACTION_DIM, DEVICE
        )
        objective = lambda m: m["critic_loss"] + m["cql_gap1"] + m["cql_gap2"]  # noqa: E731
        losses = [objective(agent.update(batch)) for _ in range(30)]
    else:
        losses = [agent.update(batch)[key] for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.8 * losses[0], losses


@pytest.mark.parametrize("name", registry.names())
def test_resume_is_bit_identical_and_seeded(name: str, replay: FrameReplay) -> None:
    trainer = trainer_for(name, replay)
    chunk = steps_per_chunk(trainer)
    for _ in range(chunk):
        trainer.step()
    buffer = io.BytesIO()
    torch.save(trainer.state_dict(), buffer)
    for _ in range(chunk):
        trainer.step()
    continued = trainer.agent.state_dict()
    close(trainer)

    # Offline: another seed, which the checkpoint overrides. Online: the same seed, since
    # OnlineTrainer derives its episodes' reset seeds from the seed it was built with.
    seed = 123 if registry.get(name).offline else 0
    resumed = trainer_for(name, replay_of_like(trainer), seed=seed)
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=False))
    for _ in range(chunk):
        resumed.step()
    assert_same_state(continued, resumed.agent.state_dict())
    close(resumed)

    fresh = trainer_for(name, replay_of_like(trainer))  # the same seed from scratch
    for _ in range(2 * chunk):
        fresh.step()
    assert_same_state(continued, fresh.agent.state_dict())
    close(fresh)


def replay_of_like(trainer: Any) -> FrameReplay:
    """Offline trainers get the same dataset again; online ones ignore it."""
    return trainer.replay


@pytest.mark.parametrize("name", registry.names())
def test_different_seeds_give_different_networks(name: str, replay: FrameReplay) -> None:
    spec = registry.get(name)
    if not spec.offline:
        pytest.skip("covered by the offline agents: the agent class is the same")
    first = trainer_for(name, replay, seed=0).agent.state_dict()
    second = trainer_for(name, replay, seed=1).agent.state_dict()
    left, right = tensors(first), tensors(second)
    assert any(not torch.equal(left[k], right[k]) for k in left)


def test_bc_learns_the_controller_on_held_out_transitions(replay: FrameReplay) -> None:
    """BC from pixels predicts held-out actions (every 4th transition, never trained on) with
    an MSE under a quarter of the best constant predictor's (the training mean action).

    Measured: about 0.05 against 0.45 after 100 updates; a policy that ignores the frames
    stays near 0.45, so this fails when BC does not learn from pixels.
    """
    held_out = torch.arange(1, len(replay), 4)
    train_mask = torch.ones(len(replay), dtype=torch.bool)
    train_mask[held_out] = False
    train = torch.arange(len(replay))[train_mask]
    torch.manual_seed(0)
    spec = registry.get("bc-pixels")
    config = small_config(spec, batch_size=32, hidden_dim=256, num_filters=16, lr=1e-3)
    agent = spec.agent_class()(config, replay.obs_shape, ACTION_DIM, DEVICE)
    generator = torch.Generator().manual_seed(0)
    for _ in range(100):
        agent.update(replay.get(train[torch.randint(len(train), (32,), generator=generator)]))
    test = replay.get(held_out)
    predicted = torch.stack([torch.from_numpy(agent.act(o.numpy(), True)) for o in test.obs])
    bc_mse = ((predicted - test.action) ** 2).mean().item()
    constant_mse = ((replay.get(train).action.mean(0) - test.action) ** 2).mean().item()
    assert bc_mse < 0.25 * constant_mse, (bc_mse, constant_mse)


def test_fused_sac_curl_gradients_equal_the_straightforward_computation() -> None:
    """The fused update (one online encode of obs, target encodes batched) gives the gradients
    of the plain computation that encodes obs separately for the critic, the CURL anchor and
    the actor, on the same augmentations and noise."""
    spec = registry.get("sac-curl-offline")
    torch.manual_seed(0)
    fused = spec.agent_class()(small_config(spec), (9, 84, 84), ACTION_DIM, DEVICE)
    plain = spec.agent_class()(small_config(spec), (9, 84, 84), ACTION_DIM, DEVICE)
    plain.load_state_dict(fused.state_dict())
    generator = torch.Generator().manual_seed(1)
    size = 8
    batch = TransitionBatch(
        obs=torch.randint(0, 256, (size, 9, 84, 84), dtype=torch.uint8, generator=generator),
        action=torch.rand((size, ACTION_DIM), generator=generator) * 2 - 1,
        reward=torch.rand((size, 1), generator=generator),
        next_obs=torch.randint(0, 256, (size, 9, 84, 84), dtype=torch.uint8, generator=generator),
        not_done=torch.ones((size, 1)),
    )
    torch.manual_seed(2)
    fused.update(batch)

    torch.manual_seed(2)  # the same draws, in the same order, as the fused update
    cfg, p = plain.config, plain
    obs, next_obs, positive = (
        random_crop(x, cfg.aug_pad) for x in (batch.obs, batch.next_obs, batch.obs)
    )
    alpha = p.log_alpha.detach().exp()
    with torch.no_grad():
        next_action, next_log_pi = p.actor.sample(*p.actor(p.encoder.conv(next_obs)))
        target_q = td_target(
            *p.critic_target(p.encoder_target(next_obs), next_action),
            next_log_pi,
            alpha,
            batch.reward,
            batch.not_done,
            cfg.discount,
        )
        key = p.encoder_target(positive)
    q1, q2 = p.critic(p.encoder(obs), batch.action)
    critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
    logits = curl_logits(p.encoder(obs), key, p.curl_w)
    curl_loss = F.cross_entropy(logits, torch.arange(size))
    pi, log_pi = p.actor.sample(*p.actor(p.encoder.conv(obs).detach()))
    actor_loss = (alpha * log_pi - torch.min(*p.critic(p.encoder(obs).detach(), pi))).mean()
    critic_grads = torch.autograd.grad(critic_loss + curl_loss, p.critic_params)
    actor_grads = torch.autograd.grad(actor_loss, list(p.actor.parameters()))
    expected = [*critic_grads, *actor_grads]
    got = [param.grad for param in [*fused.critic_params, *fused.actor.parameters()]]
    for want, have in zip(expected, got, strict=True):
        torch.testing.assert_close(have, want, rtol=1e-3, atol=1e-5)  # float summation order


def test_cql_lagrange_variant_trains_its_multiplier(replay: FrameReplay) -> None:
    """With ``with_lagrange`` alpha' moves (up while the gap exceeds its target) and the
    update stays finite; a zero target makes the initial gap an excess."""
    trainer = trainer_for("cql-curl", replay, with_lagrange=True, target_action_gap=0.0)
    metrics = [trainer.step() for _ in range(3)]
    assert all(np.isfinite(v) for m in metrics for v in m.values())
    assert metrics[0]["alpha_prime"] == 1.0 < metrics[-1]["alpha_prime"]


def test_bc_under_bf16_autocast_learns_like_fp32() -> None:
    """The demo trains BC under bf16 autocast (2.4x on an AVX512-BF16 CPU): the same seed on the
    same batches, its loss follows fp32's."""
    generator = torch.Generator().manual_seed(0)

    def batch() -> TransitionBatch:
        # Flat frames whose channel intensities are the actions: a mapping a policy can learn.
        levels = torch.randint(0, 256, (16, 9, 1, 1), dtype=torch.uint8, generator=generator)
        return TransitionBatch(
            obs=levels.expand(16, 9, 84, 84).contiguous(),
            action=levels[:, :6, 0, 0].float() / 127.5 - 1,
            reward=torch.zeros((16, 1)),
            next_obs=torch.zeros((16, 9, 84, 84), dtype=torch.uint8),
            not_done=torch.ones((16, 1)),
        )

    batches = [batch() for _ in range(4)]
    losses = {}
    for amp in (False, True):
        seed_everything(0)
        spec = registry.get("bc-pixels")
        config = dataclasses.replace(spec.default_config(), batch_size=16, amp=amp)
        agent = spec.agent_class()(config, (9, 84, 84), 6, torch.device("cpu"))
        history = [float(agent.update(batches[i % 4])["bc_loss"]) for i in range(40)]
        losses[amp] = history
    assert losses[True][-1] < 0.5 * losses[True][0]  # it learns
    assert np.mean(losses[True][-8:]) == pytest.approx(np.mean(losses[False][-8:]), rel=0.15)


COMPILE_UPDATES, COMPILE_WINDOW = 200, 50


def loss_history(name: str, compile_: bool, data: list[TransitionBatch]) -> list[dict[str, float]]:
    """Losses of ``len(data)`` updates of a tiny pixel agent, eager or compiled, same seed."""
    spec = registry.get(name)
    torch.manual_seed(0)
    config = small_config(spec, hidden_dim=16, num_filters=4, num_layers=2, compile=compile_)
    agent = spec.agent_class()(config, (9, 84, 84), ACTION_DIM, DEVICE)
    history = [agent.update(batch) for batch in data]
    return [{k: float(v) for k, v in m.items() if k.endswith("loss")} for m in history]


@pytest.mark.parametrize("name", ["sac-curl-offline", "cql-curl"])
def test_pixel_update_compiles_whole_and_learns_like_eager(name: str) -> None:
    """Each of the update's two fixed shapes (critic only; with the actor and alpha) compiles
    with ``fullgraph=True`` (a graph break would raise), and over 200 updates on the same
    batches the compiled losses follow eager's: the mean of each over the last 50 within 10%
    (random draws inside a compiled graph come from another generator, so not bit for bit)."""
    torch._dynamo.reset()
    generator = torch.Generator().manual_seed(1)

    def batch() -> TransitionBatch:
        pixels = lambda: torch.randint(0, 256, (8, 9, 84, 84), dtype=torch.uint8, generator=generator)  # noqa: E731
        return TransitionBatch(pixels(), torch.rand((8, ACTION_DIM), generator=generator) * 2 - 1,
                               torch.rand((8, 1), generator=generator), pixels(), torch.ones((8, 1)))

    data = [batch() for _ in range(8)] * (COMPILE_UPDATES // 8)
    eager, compiled = (loss_history(name, flag, data) for flag in (False, True))
    for key in eager[-1]:
        want = np.mean([m[key] for m in eager[-COMPILE_WINDOW:] if key in m])
        have = np.mean([m[key] for m in compiled[-COMPILE_WINDOW:] if key in m])
        assert have == pytest.approx(want, rel=0.10, abs=1e-3), key


BUILT_IN = [n for n in registry.names() if not registry.get(n).external]
STATE_BASELINES = [n for n in BUILT_IN if registry.get(n).obs_kind == "state"]


@pytest.mark.parametrize("name", STATE_BASELINES)
def test_state_configs_carry_no_pixel_fields(name: str) -> None:
    """A state config holds no encoder or CURL field (issue 28); its pixel twin does, and a
    state config given frames is refused with a message naming what it lacks."""
    from benchmark.harness.runner import RETIRED_STATE_FIELDS

    spec = registry.get(name)
    fields = {f.name for f in dataclasses.fields(spec.config_class())}
    assert not fields & RETIRED_STATE_FIELDS
    with pytest.raises(ValueError, match=r"has no pixel encoder fields \(feature_dim"):
        spec.agent_class()(spec.default_config(), (9, 84, 84), 6, "cpu")


def test_pixel_configs_carry_the_encoder_fields() -> None:
    for name in (n for n in BUILT_IN if registry.get(n).obs_kind == "pixels"):
        config = registry.get(name).config_class()
        fields = {f.name for f in dataclasses.fields(config)}
        assert {"feature_dim", "num_layers", "num_filters", "aug_pad"} <= fields, name
