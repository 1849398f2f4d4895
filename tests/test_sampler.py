"""FrameReplay and FrameStacker: stacking at episode edges, not_done, loading, seeded sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from datasets_helpers import build_tiny_root

from benchmark.data.sampler import FrameReplay, FrameStacker

K = 3  # frame stack
SHAPE = (4, 5, 3)  # tiny HWC frames


def frames(first: int, count: int) -> np.ndarray:
    """HWC frames whose every pixel holds the frame's number, so a stack shows its indices."""
    values = np.arange(first, first + count, dtype=np.uint8)
    return np.broadcast_to(values[:, None, None, None], (count, *SHAPE)).copy()


def frame_ids(stack: torch.Tensor) -> list[int]:
    """(3 * K, H, W) stack -> the frame number of each of its K frames, oldest first."""
    return [int(stack[3 * i, 0, 0]) for i in range(stack.shape[0] // 3)]


@pytest.fixture
def replay() -> FrameReplay:
    """Two hand-built episodes: 5 steps (frames 0-5, truncated) and 4 (frames 6-10, terminated)."""
    buffer = FrameReplay(capacity=20, frame_shape=(3, 4, 5), action_dim=2, frame_stack=K)
    actions = np.arange(18, dtype=np.float32).reshape(9, 2)
    buffer.add_episode(frames(0, 6), actions[:5], np.arange(5.0), np.zeros(5, dtype=bool))
    buffer.add_episode(frames(6, 5), actions[5:], np.arange(4.0), np.array([0, 0, 0, 1], bool))
    return buffer


def test_earliest_frames_repeat_the_first_frame(replay: FrameReplay) -> None:
    batch = replay.get(torch.tensor([0, 1, 2, 5, 6]))
    assert [frame_ids(s) for s in batch.obs] == [
        [0, 0, 0],
        [0, 0, 1],
        [0, 1, 2],
        [6, 6, 6],  # second episode: never reaches back into the first
        [6, 6, 7],
    ]
    assert frame_ids(batch.next_obs[0]) == [0, 0, 1]


def test_next_obs_of_the_last_transition_is_the_final_frame(replay: FrameReplay) -> None:
    batch = replay.get(torch.tensor([4, 8]))
    assert [frame_ids(s) for s in batch.next_obs] == [[3, 4, 5], [8, 9, 10]]


def test_stacks_match_frames_by_construction(replay: FrameReplay) -> None:
    starts, first_frame = [0] * 5 + [6] * 4, [0, 1, 2, 3, 4, 6, 7, 8, 9]
    batch = replay.get(torch.arange(9))
    for t in range(9):
        expected = [max(starts[t], first_frame[t] - j) for j in range(K - 1, -1, -1)]
        assert frame_ids(batch.obs[t]) == expected
        expected_next = [max(starts[t], first_frame[t] + 1 - j) for j in range(K - 1, -1, -1)]
        assert frame_ids(batch.next_obs[t]) == expected_next
    assert batch.obs.shape == (9, 3 * K, 4, 5) and batch.obs.dtype == torch.uint8
    assert torch.equal(batch.action, torch.arange(18, dtype=torch.float32).reshape(9, 2))


def test_not_done_is_zero_only_where_terminated(replay: FrameReplay) -> None:
    not_done = replay.get(torch.arange(9)).not_done.squeeze(1).tolist()
    assert not_done == [1, 1, 1, 1, 1, 1, 1, 1, 0]  # the truncated end keeps bootstrapping


def test_online_adds_equal_a_whole_episode(replay: FrameReplay) -> None:
    online = FrameReplay(capacity=20, frame_shape=(3, 4, 5), action_dim=2, frame_stack=K)
    online.start_episode(frames(0, 1)[0])
    for t, frame in enumerate(frames(1, 5)):
        online.add(np.array([2 * t, 2 * t + 1], np.float32), float(t), False, frame)
    indices = torch.arange(5)
    a, b = online.get(indices), replay.get(indices)
    assert torch.equal(a.obs, b.obs) and torch.equal(a.next_obs, b.next_obs)
    assert torch.equal(a.reward, b.reward) and torch.equal(a.not_done, b.not_done)


def test_frame_stacker_mirrors_the_replay(replay: FrameReplay) -> None:
    stacker = FrameStacker(K)
    stacks = [stacker.reset(frames(0, 1)[0])] + [stacker.push(f) for f in frames(1, 4)]
    batch = replay.get(torch.arange(5))
    for t, stack in enumerate(stacks):
        assert np.array_equal(stack, batch.obs[t].numpy())


def test_sampling_is_reproducible_from_a_seeded_generator(replay: FrameReplay) -> None:
    def draw(seed: int) -> torch.Tensor:
        return replay.sample(64, torch.Generator().manual_seed(seed)).action

    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))


@pytest.fixture(scope="module")
def tiny_dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_root(
        tmp_path_factory.mktemp("minari-sampler"), 45, "vorb-test/walker-walk/sampler-tiny-v0"
    )


def test_from_minari_on_a_tiny_built_dataset(
    tiny_dataset_root: Path, minari_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_dataset_root))
    dataset = minari.load_dataset("vorb-test/walker-walk/sampler-tiny-v0")
    replay = FrameReplay.from_minari(dataset)
    episodes = list(dataset.iterate_episodes())
    assert len(replay) == 45 and replay.num_frames == 45 + len(episodes)
    assert replay.obs_shape == (9, 84, 84)
    pixels = np.concatenate([e.observations["pixels"] for e in episodes])
    batch = replay.get(torch.arange(45))
    offsets = np.cumsum([0] + [len(e.actions) + 1 for e in episodes[:-1]])
    # The newest frame of each obs stack is that transition's stored frame (CHW).
    obs_rows = np.concatenate(
        [np.arange(len(e.actions)) + o for e, o in zip(episodes, offsets, strict=True)]
    )
    assert np.array_equal(batch.obs[:, -3:].permute(0, 2, 3, 1).numpy(), pixels[obs_rows])
    assert np.array_equal(batch.next_obs[:, -3:].permute(0, 2, 3, 1).numpy(), pixels[obs_rows + 1])
    actions = np.concatenate([e.actions for e in episodes])
    assert np.array_equal(batch.action.numpy(), actions)
    assert batch.not_done.eq(1).all()  # walker episodes only truncate
    assert len(FrameReplay.from_minari(dataset, max_transitions=25)) == 25
