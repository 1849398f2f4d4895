"""Behaviour policies: the committed checkpoints and replay, the collection arithmetic the
recipes' digests rest on, and ``train-behaviour`` on top of the state SAC baseline."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from baselines.sac_curl import SACCURLAgent
from benchmark.data.envs import ENV_ID, STATE_ENV_ID, ensure_headless_gl
from benchmark.data.reference_returns import load_reference_returns
from benchmark.datasets.__main__ import main as datasets_main
from benchmark.datasets.build import build_dataset, state_dataset_id
from benchmark.datasets.collect import EpisodeTask, collect_episode, episode_seeds
from benchmark.datasets.policies import (
    POLICY_DIR,
    BehaviourPolicy,
    CheckpointError,
    NumpyActor,
)
from benchmark.datasets.recipes import get_recipe
from benchmark.datasets.store import REWARD_GRID, build_record
from benchmark.datasets.train_behaviour import (
    BehaviourTrainer,
    BehaviourTraining,
    behaviour_sac_config,
    deterministic_return,
    make_state_env,
    random_act,
    record_deterministic_return,
    run_episode,
)
from benchmark.datasets.verify import verify_dataset

# MuJoCo picks its GL backend when dm_control is first imported: choose a headless one before a
# state env (which does not render) imports it, or the pixel env later fails to make a context.
ensure_headless_gl()

EXPERT = POLICY_DIR / "expert.pt"
MEDIUM = POLICY_DIR / "medium.pt"
REPLAY = POLICY_DIR / "medium_replay.npz"


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)  # the same arithmetic in every run, whatever the machine


# -- the committed policies ---------------------------------------------------------------------
@pytest.fixture(scope="module", params=["expert", "medium"])
def policy(request: pytest.FixtureRequest) -> BehaviourPolicy:
    return BehaviourPolicy.load(POLICY_DIR / f"{request.param}.pt")


def test_committed_policies_act_in_bounds_and_reproducibly(policy: BehaviourPolicy) -> None:
    assert (policy.obs_dim, policy.action_dim) == (24, 6)
    states = np.random.default_rng(0).standard_normal((50, 24)) * 3.0
    first = [policy.act(s, np.random.default_rng(7)) for s in states]
    again = [policy.act(s, np.random.default_rng(7)) for s in states]
    for action, repeat in zip(first, again, strict=True):
        assert action.dtype == np.float32 and action.shape == (6,)
        assert np.all(np.abs(action) <= 1.0)
        np.testing.assert_array_equal(action, repeat)
    rng = np.random.default_rng(0)
    mode = policy.act(states[0], rng, deterministic=True)
    assert mode.dtype == np.float32 and mode.shape == (6,)
    assert rng.bit_generator.state == np.random.default_rng(0).bit_generator.state  # no draw
    np.testing.assert_array_equal(mode, policy.act(states[0], rng, deterministic=True))
    assert not np.array_equal(mode, first[0])  # sampling adds noise to the mode


# sha256 of the float32 actions of steps 0-49 of episode 0 of each recipe (seeds from
# collect.episode_seeds), computed with the collection code of commit 7f3ffcd, before the
# behaviour module moved: the recipes' digests rest on this arithmetic.
FIRST_ACTIONS_SHA256 = {
    ("expert", True): "a3c1440669e051db4106dac221820a32d3b0ab4e10e44893e638e33531ffedef",
    ("expert", False): "1f4918ca5b3fb12df271d3d9ee911bcbc36c085cb95aea88114607f31f998933",
    ("medium", True): "b5ff9a682f01cd914c736f721136fe9c3d7a6e35ae87cd508764b7a2648ede06",
    ("medium", False): "3df9794719bd1dff509977409c89f78b53b0a519aaff1dff2ae3c806f10234e7",
}


@pytest.mark.parametrize(("name", "stochastic"), list(FIRST_ACTIONS_SHA256))
def test_collection_arithmetic_is_unchanged(name: str, stochastic: bool) -> None:
    recipe = get_recipe(f"vorb/walker-walk/{name}-v0")
    assert recipe.stochastic_actions  # the recipes sample; the mode is checked as well
    reset_seed, action_seed = episode_seeds(recipe.data_seed, 0)
    task = EpisodeTask(
        index=0,
        reset_seed=reset_seed,
        action_seed=action_seed,
        max_steps=50,
        time_limit_s=25.0,
        kind="policy",
        checkpoint=recipe.source.checkpoint,
        stochastic=stochastic,
        pixels=False,
    )
    actions = collect_episode(task).actions
    assert actions.shape == (50, 6) and actions.dtype == np.float32
    digest = hashlib.sha256(np.ascontiguousarray(actions).tobytes()).hexdigest()
    assert digest == FIRST_ACTIONS_SHA256[name, stochastic]


def test_state_only_medium_replay_matches_the_recipe_digests() -> None:
    """The whole medium-replay recipe on the state walker (33,000 transitions, physics only):
    the build checks every digest but the frames' against the recipe, and verify agrees."""
    dataset_id = "vorb/walker-walk/medium-replay-v0"
    dataset = build_dataset(dataset_id, workers=1, progress=False, observation="state")
    assert dataset.total_steps == 33_000
    report = verify_dataset(state_dataset_id(dataset_id))
    assert report.ok, report.lines()
    assert report.reference == get_recipe(dataset_id).path.name
    assert {check.name for check in report.checks} >= {
        "actions",
        "state",
        "physics",
        "rewards_rounded",  # what any CPU reproduces (benchmark.datasets.store.REWARD_GRID)
    }
    record = build_record(dataset)
    assert 0 < record["rewards_rounding_margin"] <= REWARD_GRID / 2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["expert", "medium"])
def test_state_only_policy_recipes_match_their_digests(name: str) -> None:
    """The policy recipes at full size on states (100,000 transitions, about 90 s each on one
    core): every action the committed policies sample, checked against the recipe's digests."""
    dataset_id = f"vorb/walker-walk/{name}-v0"
    build_dataset(dataset_id, workers=1, progress=False, observation="state")
    report = verify_dataset(state_dataset_id(dataset_id))
    assert report.ok and report.reference == get_recipe(dataset_id).path.name, report.lines()


def test_expert_beats_random_on_a_short_episode() -> None:
    expert = BehaviourPolicy.load(EXPERT)
    env = make_state_env(time_limit_s=4.0)  # 80 agent steps
    seeds = (11, 12)

    def mean_return(act: object) -> float:
        return float(np.mean([run_episode(env, act, s, np.random.default_rng(s)) for s in seeds]))

    expert_mean, random_mean = mean_return(expert.act), mean_return(random_act)
    env.close()
    # Measured on these seeds: random about 7, the committed expert about 100 (medium about 70).
    assert expert_mean > random_mean + 40.0, (expert_mean, random_mean)


def test_reference_returns_are_ordered() -> None:
    returns = load_reference_returns()
    plan = BehaviourTraining()
    assert returns["random"]["mean"] < returns["medium"]["mean"] < returns["expert"]["mean"]
    assert plan.in_band(returns["medium"]["mean"])
    assert returns["expert"]["mean"] >= plan.expert_min
    for name in ("medium", "expert"):
        assert returns[name]["env_steps"] == 2 * returns[name]["agent_steps"]
        assert returns[name]["episodes"] == 20
    assert MEDIUM.stat().st_size < 1_000_000 and EXPERT.stat().st_size < 1_000_000


def test_the_trainer_uses_the_committed_policies_hyperparameters() -> None:
    """``behaviour_sac_config`` holds the values the committed policies were trained with
    (their ``returns.json`` records the previous trainer's config; ``tau`` is ``critic_tau``)."""
    old = load_reference_returns()["training"]["config"]
    new = behaviour_sac_config()
    renamed = {"tau": "critic_tau"}
    run_knobs = {"max_agent_steps", "eval_every", "snapshot_every", "max_minutes", "num_threads"}
    assert run_knobs <= {field.name for field in dataclasses.fields(BehaviourTraining)}
    for name in sorted(old.keys() - run_knobs):  # every SAC hyperparameter it had
        assert getattr(new, renamed.get(name, name)) == old[name], name
    assert (new.actor_update_freq, new.critic_target_update_freq) == (1, 1)  # as every update


def replayed_rewards(env_id: str, seed: int, actions: np.ndarray) -> np.ndarray:
    env = gym.make(env_id)
    env.reset(seed=int(seed))
    rewards = [env.step(action)[1] for action in actions]
    env.close()
    return np.asarray(rewards, dtype=np.float32)


def test_medium_replay_layout() -> None:
    replay = np.load(REPLAY)
    lengths = replay["episode_lengths"]
    assert replay["episode_seeds"].shape == lengths.shape
    assert replay["actions"].shape == (lengths.sum(), 6) and replay["actions"].dtype == np.float32
    assert replay["rewards"].shape == (lengths.sum(),)
    assert np.all(lengths == 500)  # whole episodes only


@pytest.mark.parametrize("env_id", [STATE_ENV_ID, ENV_ID])
def test_medium_replay_reproduces_recorded_rewards(env_id: str) -> None:
    """The seeds and actions alone rebuild the trajectory, with or without rendering."""
    replay = np.load(REPLAY)
    offsets = np.concatenate([[0], np.cumsum(replay["episode_lengths"])])
    steps = 50 if env_id == STATE_ENV_ID else 20  # rendering costs ~40 ms a step
    for episode in (0, len(offsets) - 2):
        start = offsets[episode]
        actions = replay["actions"][start : start + steps]
        recorded = replay["rewards"][start : start + steps]
        got = replayed_rewards(env_id, replay["episode_seeds"][episode], actions)
        np.testing.assert_array_equal(got, recorded)


# -- checkpoint errors --------------------------------------------------------------------------
def test_missing_checkpoint_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.pt"
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        BehaviourPolicy.load(path)


@pytest.mark.parametrize("content", [b"not a checkpoint", b""])
def test_corrupt_checkpoint_names_the_path(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        BehaviourPolicy.load(path)


def test_checkpoint_without_actor_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "partial.pt"
    torch.save({"config": {"log_std_min": -5.0, "log_std_max": 2.0}, "obs_dim": 24}, path)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        BehaviourPolicy.load(path)


def test_checkpoint_of_other_dims_is_refused(tmp_path: Path) -> None:
    payload = torch.load(EXPERT, weights_only=True)
    path = tmp_path / "wrong.pt"
    torch.save({**payload, "obs_dim": 17}, path)
    with pytest.raises(CheckpointError, match="after width 17"):
        BehaviourPolicy.load(path)


# -- train-behaviour: the state SAC baseline, picking checkpoints ------------------------------
def test_numpy_actor_matches_the_baselines_torch_actor() -> None:
    """Training acts with the agent's torch actor; selection and collection with numpy."""
    torch.manual_seed(0)
    config = behaviour_sac_config()
    actor = SACCURLAgent(config, (24,), 6, "cpu").actor
    states = np.random.default_rng(0).standard_normal((5, 24))
    with torch.no_grad():
        mean, log_std = actor(torch.as_tensor(states, dtype=torch.float32))
    bounds = (config.log_std_min, config.log_std_max)
    np_mean, np_log_std = NumpyActor.from_state_dict(actor.state_dict(), bounds).mean_log_std(
        states
    )
    np.testing.assert_allclose(np_mean, mean.numpy(), atol=1e-5)
    np.testing.assert_allclose(np_log_std, log_std.numpy(), atol=1e-5)


# 20 agent steps an episode; bands that the first snapshot and evaluation meet.
TINY = [
    "--time-limit-s", "1.0", "--max-agent-steps", "200", "--eval-every", "60",
    "--snapshot-every", "20", "--medium-band", "0", "1e9", "--expert-min", "0",
    "--set", "initial_random_steps=20", "--set", "batch_size=32",
]  # fmt: skip


def train_tiny(out: Path, seed: int = 3) -> dict:
    assert datasets_main(["train-behaviour", "--seed", str(seed), "--out", str(out), *TINY]) == 0
    return json.loads((out / "returns.json").read_text())


def test_train_behaviour_writes_every_artefact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = train_tiny(tmp_path / "a")
    assert {"random", "medium", "expert", "medium_replay", "training"} <= summary.keys()
    # The first snapshot (after one episode of 20 random steps) is the first in the band.
    assert (summary["medium"]["agent_steps"], summary["medium"]["env_steps"]) == (20, 40)
    assert summary["expert"]["agent_steps"] == 60
    training = summary["training"]
    assert (training["seed"], training["baseline"], training["updates"]) == (
        3,
        "sac-state-online",
        40,
    )
    assert training["config"]["batch_size"] == 32 and training["config"]["critic_lr"] == 1e-3
    assert training["command"].startswith("python -m benchmark.datasets train-behaviour")
    for name in ("medium", "expert"):
        policy = BehaviourPolicy.load(tmp_path / "a" / f"{name}.pt")
        assert policy.meta["name"] == name
        action = policy.act(np.zeros(24), np.random.default_rng(0))
        assert action.dtype == np.float32 and action.shape == (6,)
    # The replay: the online trainer's first episode (reset seed seed * 100_003), replayable.
    replay = np.load(tmp_path / "a" / "medium_replay.npz")
    assert replay["episode_seeds"].tolist() == [3 * 100_003]
    assert replay["actions"].shape == (20, 6) and replay["actions"].dtype == np.float32
    env = make_state_env(time_limit_s=1.0)
    env.reset(seed=3 * 100_003)
    rewards = [env.step(action)[1] for action in replay["actions"]]
    np.testing.assert_array_equal(np.float32(rewards), replay["rewards"])
    # Policies already there are kept unless --force.
    assert datasets_main(["train-behaviour", "--out", str(tmp_path / "a"), *TINY]) == 2
    assert "--force" in capsys.readouterr().err
    # The same seed again: the same policies, bit for bit.
    train_tiny(tmp_path / "b")
    for name in ("medium.pt", "expert.pt"):
        first, second = (torch.load(tmp_path / r / name, weights_only=True) for r in "ab")
        for key, value in first["actor"].items():
            torch.testing.assert_close(value, second["actor"][key], rtol=0, atol=0)


def test_train_behaviour_refuses_a_schedule_off_the_episode_ends(tmp_path: Path) -> None:
    plan = BehaviourTraining(time_limit_s=1.0, eval_every=50)  # 20-step episodes
    with pytest.raises(ValueError, match=r"eval_every=50 .* 20 agent steps"):
        BehaviourTrainer(behaviour_sac_config(), plan, 0, tmp_path, "test")


@pytest.mark.parametrize(
    ("option", "expected"),
    [(["--set", "batch_size=0"], "batch_size=0"), (["--max-minutes", "0"], "max_minutes=0.0")],
)
def test_train_behaviour_refuses_out_of_range_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], expected: str
) -> None:
    assert datasets_main(["train-behaviour", "--out", str(tmp_path), *option]) == 2
    assert expected in capsys.readouterr().err


def test_train_behaviour_names_the_valid_sac_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train-behaviour", "--out", str(tmp_path), "--set", "critic_rate=1"]
    assert datasets_main(args) == 2
    error = capsys.readouterr().err
    assert "'critic_rate'" in error and "critic_lr" in error


def test_the_committed_deterministic_expert_return_is_what_the_code_measures() -> None:
    """returns.json's ``expert.deterministic`` (the actions every evaluation takes) against a
    re-measurement of its first two episodes, and against the sampled return beside it."""
    expert = load_reference_returns()["expert"]
    recorded = expert["deterministic"]
    assert recorded["eval_seeds"] == expert["eval_seeds"]  # paired: only the actions differ
    assert recorded["episodes"] == 20 and recorded["mean"] == pytest.approx(
        np.mean(recorded["returns"])
    )
    again = deterministic_return(EXPERT, tuple(recorded["eval_seeds"][:2]))
    np.testing.assert_allclose(again.returns, recorded["returns"][:2], rtol=1e-9)
    # Measured: 925.3 deterministic against 907.8 sampled, the normalised scale's 100.
    assert recorded["mean"] > expert["mean"]


def test_recording_a_deterministic_return_keeps_the_sampled_one(tmp_path: Path) -> None:
    for name in ("expert.pt", "returns.json"):
        (tmp_path / name).write_bytes((POLICY_DIR / name).read_bytes())
    before = json.loads((tmp_path / "returns.json").read_text())
    before["expert"].pop("deterministic", None)
    (tmp_path / "returns.json").write_text(json.dumps(before))
    seeds = (5, 6)
    recorded = record_deterministic_return("expert", "a command", tmp_path, seeds, 1.0)
    after = json.loads((tmp_path / "returns.json").read_text())
    assert after["expert"].pop("deterministic") == recorded
    assert after == before  # nothing else changed
    assert recorded["eval_seeds"] == list(seeds) and recorded["command"] == "a command"
    # Deterministic actions draw no noise: the noise seed cannot change the returns.
    env = make_state_env(1.0)
    policy = BehaviourPolicy.load(EXPERT)
    rng = np.random.default_rng(12345)
    manual = [run_episode(env, lambda s, r: policy.act(s, r, True), seed, rng) for seed in seeds]
    env.close()
    np.testing.assert_allclose(recorded["returns"], manual, rtol=1e-12)
    with pytest.raises(ValueError, match=r"no sampled return of 'expret'.*'expert'"):
        record_deterministic_return("expret", "a command", tmp_path, seeds, 1.0)
