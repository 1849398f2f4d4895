"""D4RL-style dicts on a tiny real dataset (episodes of 20, 20 and 5 steps)."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import minari
import numpy as np
import pytest
import torch
from datasets_helpers import (
    RANDOM_ID,
    TINY_RANDOM_ID,
    TINY_TIME_LIMIT_S,
    build_tiny_root,
)

from benchmark.data.sampler import FrameReplay
from benchmark.datasets import DatasetError, build_dataset, d4rl

TRANSITIONS = 45  # 20 + 20 + 5: the last episode stops early (the data ran out)
EPISODE_ENDS = [19, 39, 44]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_root(tmp_path_factory.mktemp("minari-d4rl"), TRANSITIONS)


@pytest.fixture
def episodes(tiny_root: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_root))
    return list(minari.load_dataset(TINY_RANDOM_ID).iterate_episodes())


def stacks_as_vd4rl_builds_them(episodes: list, frame_stack: int) -> tuple[np.ndarray, np.ndarray]:
    """(obs, next_obs) stacks made the way V-D4RL's frame-stacking wrapper does: a deque of the
    last k channel-first frames, filled with the reset frame at each episode's start."""
    observations, next_observations = [], []
    for episode in episodes:
        chw = episode.observations["pixels"].transpose(0, 3, 1, 2)
        stack = deque([chw[0]] * frame_stack, maxlen=frame_stack)
        for frame in chw[1:]:
            observations.append(np.concatenate(stack))
            stack.append(frame)
            next_observations.append(np.concatenate(stack))
    return np.stack(observations), np.stack(next_observations)


def test_qlearning_dataset_shapes_dtypes_and_flags(episodes: list) -> None:
    data = d4rl.qlearning_dataset(TINY_RANDOM_ID)
    assert set(data) == {
        "observations",
        "next_observations",
        "actions",
        "rewards",
        "terminals",
        "timeouts",
    }
    for key in ("observations", "next_observations"):
        assert data[key].shape == (TRANSITIONS, 9, 84, 84) and data[key].dtype == np.uint8
    assert data["actions"].shape == (TRANSITIONS, 6) and data["actions"].dtype == np.float32
    assert data["rewards"].shape == (TRANSITIONS,) and data["rewards"].dtype == np.float32
    assert data["terminals"].dtype == data["timeouts"].dtype == np.dtype(bool)
    assert not data["terminals"].any()  # walker never terminates
    assert np.flatnonzero(data["timeouts"]).tolist() == EPISODE_ENDS
    np.testing.assert_array_equal(data["actions"], np.concatenate([e.actions for e in episodes]))
    np.testing.assert_array_equal(
        data["rewards"], np.concatenate([e.rewards for e in episodes]).astype(np.float32)
    )


def test_stacks_repeat_the_first_frame_at_episode_starts(episodes: list) -> None:
    data = d4rl.qlearning_dataset(TINY_RANDOM_ID)
    expected_obs, expected_next = stacks_as_vd4rl_builds_them(episodes, 3)
    np.testing.assert_array_equal(data["observations"], expected_obs)
    np.testing.assert_array_equal(data["next_observations"], expected_next)
    second_start = episodes[1].observations["pixels"][0].transpose(2, 0, 1)
    np.testing.assert_array_equal(data["observations"][20], np.concatenate([second_start] * 3))
    # The frames really differ, so the equalities above could fail.
    assert not np.array_equal(data["observations"][20], data["observations"][21])


def test_stacks_equal_those_vorb_trains_on(episodes: list) -> None:
    replay = FrameReplay.from_minari(minari.load_dataset(TINY_RANDOM_ID))
    batch = replay.get(torch.arange(TRANSITIONS))
    data = d4rl.qlearning_dataset(TINY_RANDOM_ID)
    np.testing.assert_array_equal(data["observations"], batch.obs.numpy())
    np.testing.assert_array_equal(data["next_observations"], batch.next_obs.numpy())


def test_get_dataset_has_no_next_observations(episodes: list) -> None:
    data = d4rl.get_dataset(TINY_RANDOM_ID, frame_stack=1)
    assert "next_observations" not in data
    assert data["observations"].shape == (TRANSITIONS, 3, 84, 84)
    frames = np.concatenate([e.observations["pixels"][:-1] for e in episodes])
    np.testing.assert_array_equal(data["observations"], frames.transpose(0, 3, 1, 2))


def test_lazy_views_and_frame_index_hold_frames_once(episodes: list) -> None:
    eager = d4rl.qlearning_dataset(TINY_RANDOM_ID)
    lazy = d4rl.qlearning_dataset(TINY_RANDOM_ID, lazy=True)
    view = lazy["next_observations"]
    assert view.shape == eager["next_observations"].shape and len(view) == TRANSITIONS
    assert view.frames is lazy["observations"].frames  # one frame array for both
    assert view.frames.shape == (TRANSITIONS + len(episodes), 3, 84, 84)
    batch = np.array([0, 19, 20, 44])
    np.testing.assert_array_equal(view[batch], eager["next_observations"][batch])
    np.testing.assert_array_equal(view[7], eager["next_observations"][7])
    np.testing.assert_array_equal(np.asarray(lazy["observations"]), eager["observations"])
    indexed = d4rl.load_frame_indexed(TINY_RANDOM_ID)
    gathered = indexed.frames[indexed.observation_index[batch]].reshape(len(batch), 9, 84, 84)
    np.testing.assert_array_equal(gathered, eager["observations"][batch])


def test_state_observations_on_request(episodes: list) -> None:
    states = d4rl.qlearning_dataset(TINY_RANDOM_ID, observation="state")
    expected = np.concatenate([e.observations["state"][:-1] for e in episodes]).astype(np.float32)
    assert states["observations"].shape == (TRANSITIONS, 24)
    np.testing.assert_array_equal(states["observations"], expected)
    both = d4rl.qlearning_dataset(TINY_RANDOM_ID, with_state=True)
    np.testing.assert_array_equal(both["states"], expected)
    expected_next = np.concatenate([e.observations["state"][1:] for e in episodes])
    np.testing.assert_array_equal(both["next_states"], expected_next.astype(np.float32))
    assert both["observations"].dtype == np.uint8


def test_normalized_score_on_d4rl_scale(episodes: list) -> None:
    metadata = minari.load_dataset(TINY_RANDOM_ID).storage.metadata
    low, high = metadata["ref_min_score"], metadata["ref_max_score"]
    assert d4rl.get_normalized_score(TINY_RANDOM_ID, low) == pytest.approx(0.0)
    assert d4rl.get_normalized_score(TINY_RANDOM_ID, high) == pytest.approx(1.0)
    halfway = d4rl.get_normalized_score(TINY_RANDOM_ID, np.array([(low + high) / 2]))
    np.testing.assert_allclose(halfway, [0.5])


def test_bad_arguments_name_the_valid_ones(episodes: list) -> None:
    with pytest.raises(ValueError, match=r"observation must be one of \('pixels', 'state'\)"):
        d4rl.get_dataset(TINY_RANDOM_ID, observation="rgb")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="frame_stack must be a positive integer, got 0"):
        d4rl.qlearning_dataset(TINY_RANDOM_ID, frame_stack=0)
    with pytest.raises(DatasetError, match=r"recipe ids: .*vorb/walker-walk/expert-v0"):
        d4rl.get_dataset("vorb/walker-walk/nonexistent-v0")


TINY_STATE_ID = "vorb-test-state/walker-walk/random-tiny-v0"


@pytest.fixture(scope="module")
def state_only_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny recipe built state-only (no frames stored), as the state track's data is."""
    root = tmp_path_factory.mktemp("minari-d4rl-state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        build_dataset(
            RANDOM_ID,
            transitions=TRANSITIONS,
            time_limit_s=TINY_TIME_LIMIT_S,
            workers=1,
            target_id=TINY_STATE_ID,
            progress=False,
            observation="state",
        )
    return root


def test_state_only_build_gives_d4rl_dicts(
    state_only_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(state_only_root))
    episodes = list(minari.load_dataset(TINY_STATE_ID).iterate_episodes())
    assert "pixels" not in episodes[0].observations  # really a state-only build
    data = d4rl.qlearning_dataset(TINY_STATE_ID, observation="state")
    states = [e.observations["state"].astype(np.float32) for e in episodes]
    np.testing.assert_array_equal(data["observations"], np.concatenate([s[:-1] for s in states]))
    np.testing.assert_array_equal(
        data["next_observations"], np.concatenate([s[1:] for s in states])
    )
    np.testing.assert_array_equal(data["actions"], np.concatenate([e.actions for e in episodes]))
    rewards = np.concatenate([e.rewards for e in episodes]).astype(np.float32)
    np.testing.assert_array_equal(data["rewards"], rewards)
    assert np.flatnonzero(data["timeouts"]).tolist() == EPISODE_ENDS
    assert not data["terminals"].any()
    plain = d4rl.get_dataset(TINY_STATE_ID, observation="state")
    assert "next_observations" not in plain
    np.testing.assert_array_equal(plain["observations"], data["observations"])
    with pytest.raises(ValueError, match=r"state-only build .* use observation='state'"):
        d4rl.qlearning_dataset(TINY_STATE_ID)  # pixels by default: there are none


def test_state_observations_agree_between_a_pixel_and_a_state_only_build(
    episodes: list, state_only_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One recipe, one data seed: the state-only build stores the pixel build's episodes."""
    from_pixel_build = d4rl.qlearning_dataset(TINY_RANDOM_ID, observation="state")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(state_only_root))
    from_state_build = d4rl.qlearning_dataset(TINY_STATE_ID, observation="state")
    for key, values in from_pixel_build.items():
        np.testing.assert_array_equal(from_state_build[key], values, err_msg=key)
