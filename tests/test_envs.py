"""The registered pixel walker: real dm_control physics and rendering."""

from __future__ import annotations

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import benchmark  # noqa: F401  (registers the ids)
from benchmark.data.envs import ENV_ID, STATE_ENV_ID


@pytest.fixture(scope="module")
def env() -> gym.Env:
    environment = gym.make(ENV_ID, time_limit_s=1.0)  # 40 control steps = 20 agent steps
    yield environment
    environment.close()


def test_observation_layout(env: gym.Env) -> None:
    observation, _ = env.reset(seed=0)
    assert observation["pixels"].shape == (84, 84, 3)
    assert observation["pixels"].dtype == np.uint8
    assert observation["state"].shape == (24,)
    assert observation["physics"].shape == (18,)
    assert env.observation_space.contains(observation)


def test_action_repeat_and_truncation(env: gym.Env) -> None:
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, reward, terminated, truncated, _ = env.step(np.zeros(6, dtype=np.float32))
        assert 0.0 <= reward <= 2.0  # two sub-steps of a reward in [0, 1]
        steps, done = steps + 1, terminated or truncated
    assert steps == 20 == env.unwrapped.max_episode_steps
    assert truncated and not terminated  # the time limit truncates; walker never terminates


def test_default_episode_is_500_agent_steps() -> None:
    state_env = gym.make(STATE_ENV_ID)
    assert state_env.unwrapped.max_episode_steps == 500
    state_env.close()


def test_seeded_reset_is_deterministic(env: gym.Env) -> None:
    first, _ = env.reset(seed=7)
    other, _ = env.reset(seed=8)
    again, _ = env.reset(seed=7)
    assert np.array_equal(first["pixels"], again["pixels"])
    assert np.array_equal(first["physics"], again["physics"])
    assert not np.array_equal(first["physics"], other["physics"])


def test_physics_state_rerenders_the_same_frame(env: gym.Env) -> None:
    env.reset(seed=1)
    for _ in range(3):
        observation, *_ = env.step(env.action_space.sample())
    env.reset(seed=2)
    env.unwrapped.set_physics_state(observation["physics"])
    assert np.array_equal(env.unwrapped.render(), observation["pixels"])


def test_bad_seed_and_action_are_named(env: gym.Env) -> None:
    with pytest.raises(ValueError, match="2\\*\\*32"):
        env.reset(seed=2**32)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action shape"):
        env.step(np.zeros(5))


def test_spec_serialises_and_recovers_in_fresh_process() -> None:
    spec_json = gym.spec(ENV_ID).to_json()
    code = (
        "import json, sys, gymnasium as gym\n"
        "spec = gym.envs.registration.EnvSpec.from_json(sys.argv[1])\n"
        "env = gym.make(spec)\n"
        "obs, _ = env.reset(seed=0)\n"
        "print(json.dumps([list(obs['pixels'].shape), env.unwrapped.action_repeat]))\n"
        "env.close()\n"
    )
    # A fresh interpreter that never imported benchmark: the entry point string must suffice.
    out = subprocess.run(
        [sys.executable, "-c", code, spec_json],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [[84, 84, 3], 2]


def test_pixel_env_renders_after_a_state_env_in_a_fresh_process() -> None:
    code = (
        "import os, gymnasium as gym, benchmark\n"
        "os.environ.pop('MUJOCO_GL', None)\n"
        "gym.make('vorb/walker-walk-state-v0').close()\n"
        "env = gym.make('vorb/walker-walk-pixels-v0')\n"
        "print(env.reset(seed=0)[0]['pixels'].shape)\n"
        "env.close()\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "MUJOCO_GL"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "(84, 84, 3)"
