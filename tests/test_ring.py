"""The online replay as a ring, its incremental checkpoints and their resume.

Frames carry their own global number in their pixels (two channels: low and high byte), so a
gathered stack shows which frames it reads; every check compares against a naive reference stack
built from the raw frames pushed. The last tests run an OnlineTrainer on the real pixel walker.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import benchmark  # noqa: F401  (registers the ids)
from benchmark.atomic import atomic_write
from benchmark.data.envs import ENV_ID
from benchmark.data.replay_store import CHUNK_GLOB, ChunkError
from benchmark.data.sampler import FrameReplay, FrameStacker
from benchmark.harness import registry
from benchmark.harness.training import OnlineTrainer, make_trainer

K = 3
HWC = (2, 3, 3)
ACTION_DIM = 2
# Episode lengths with one- and two-step episodes: more episode starts than the 1% spare frames,
# so the frame ring must grow while wrapped.
LENGTHS = [4, 1, 6, 2, 1, 9, 3, 1, 1, 5, 7, 2, 8, 1, 4]


def frame(number: int) -> np.ndarray:
    pixels = np.zeros(HWC, dtype=np.uint8)
    pixels[..., 0], pixels[..., 1] = number % 256, number // 256
    return pixels


def numbers(stack: torch.Tensor) -> list[int]:
    """(3 * K, H, W) stack -> the global number of each of its K frames, oldest first."""
    return [int(stack[3 * i, 0, 0]) + 256 * int(stack[3 * i + 1, 0, 0]) for i in range(K)]


class Reference:
    """The naive replay: every transition's stacks listed from the raw frames pushed."""

    def __init__(self) -> None:
        self.frames_pushed = 0
        self.obs: list[list[int]] = []
        self.next_obs: list[list[int]] = []
        self.actions: list[np.ndarray] = []
        self.episode: list[int] = []

    def start(self) -> int:
        self.episode = [self.frames_pushed]
        self.frames_pushed += 1
        return self.episode[0]

    def step(self, action: np.ndarray) -> int:
        before = list(self.episode)
        self.episode.append(self.frames_pushed)
        self.frames_pushed += 1
        pad = lambda frames: ([frames[0]] * K + frames)[-K:]  # noqa: E731
        self.obs.append(pad(before))
        self.next_obs.append(pad(self.episode))
        self.actions.append(action)
        return self.episode[-1]


def fill(replay: FrameReplay, reference: Reference, lengths: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    for length in lengths:
        replay.start_episode(frame(reference.start()))
        for step in range(length):
            action = rng.uniform(-1, 1, ACTION_DIM).astype(np.float32)
            number = reference.step(action)
            replay.add(action, float(number), step == length - 1 and length % 2 == 0, frame(number))


def assert_matches(replay: FrameReplay, reference: Reference) -> None:
    live = min(replay.capacity, len(reference.obs))
    assert len(replay) == live
    batch = replay.get(torch.arange(live)).to("cpu")
    first = len(reference.obs) - live
    assert [numbers(s) for s in batch.obs] == reference.obs[first:]
    assert [numbers(s) for s in batch.next_obs] == reference.next_obs[first:]
    assert np.array_equal(batch.action.numpy(), np.stack(reference.actions[first:]))
    assert batch.reward.squeeze(1).tolist() == [float(o[-1]) for o in reference.next_obs[first:]]


def new_replay(capacity: int = 7, device: str = "cpu") -> FrameReplay:
    return FrameReplay(capacity, (HWC[2], HWC[0], HWC[1]), ACTION_DIM, K, device=device)


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")),
]


@pytest.mark.parametrize("device", DEVICES)
def test_stacks_stay_exact_at_and_past_the_wrap(device: str) -> None:
    replay, reference = new_replay(device=device), Reference()
    initial_frame_slots = replay.frame_capacity
    rng = np.random.default_rng(0)
    for length in LENGTHS:
        replay.start_episode(frame(reference.start()))
        for _ in range(length):
            action = rng.uniform(-1, 1, ACTION_DIM).astype(np.float32)
            number = reference.step(action)
            replay.add(action, float(number), False, frame(number))
            assert_matches(replay, reference)  # every step: before, at and after the wrap
    assert replay.transitions_added == sum(LENGTHS) > 6 * replay.capacity
    assert replay.num_frames > replay.frame_capacity  # the frame ring wrapped too ...
    assert replay.frame_capacity > initial_frame_slots  # ... and grew while wrapped


@pytest.mark.parametrize("device", DEVICES)
def test_sampling_is_uniform_over_the_live_transitions_only(device: str) -> None:
    replay, reference = new_replay(device=device), Reference()
    fill(replay, reference, LENGTHS, seed=0)
    batch = replay.sample(4000, torch.Generator(device=replay.device).manual_seed(0))
    assert batch.obs.device == replay.device  # gathered and stacked where the replay lives
    batch = batch.to("cpu")
    live = {tuple(o) for o in reference.obs[-replay.capacity :]}
    drawn = [tuple(numbers(s)) for s in batch.obs]
    assert set(drawn) == live
    counts = np.unique(drawn, axis=0, return_counts=True)[1]
    assert counts.min() > 0.7 * 4000 / replay.capacity  # about 571 each


def samples(replay: FrameReplay, seed: int, draws: int = 3) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    batches = [replay.sample(16, generator) for _ in range(draws)]
    return [t for b in batches for t in (b.obs, b.next_obs, b.action, b.reward, b.not_done)]


def assert_same_samples(first: FrameReplay, second: FrameReplay) -> None:
    assert all(
        torch.equal(a, b) for a, b in zip(samples(first, 1), samples(second, 1), strict=True)
    )


def round_trip(state: dict[str, Any], path: Path) -> dict[str, Any]:
    atomic_write(path, lambda file: torch.save(state, file))
    return torch.load(path, weights_only=False)


def test_in_memory_resume_after_a_wrap_is_exact(tmp_path: Path) -> None:
    replay, reference = new_replay(), Reference()
    fill(replay, reference, LENGTHS[:8], seed=0)
    restored = new_replay()
    restored.load_state_dict(round_trip(replay.state_dict(), tmp_path / "checkpoint.pt"))
    assert_same_samples(replay, restored)
    twin = Reference()
    twin.__dict__.update(
        {k: list(v) if isinstance(v, list) else v for k, v in vars(reference).items()}
    )
    fill(replay, reference, LENGTHS[8:], seed=1)  # both go on past further wraps
    fill(restored, twin, LENGTHS[8:], seed=1)
    assert_same_samples(replay, restored)
    assert_matches(restored, twin)


def checkpoint(replay: FrameReplay, path: Path) -> dict[str, Any]:
    """What the runner does: state (writes chunks), checkpoint.pt last, then collect."""
    state = round_trip(replay.state_dict(), path)
    replay.checkpoint_saved()
    return state


def test_incremental_checkpoints_resume_exactly_and_write_only_what_is_new(
    tmp_path: Path,
) -> None:
    replay, reference = new_replay(), Reference()
    replay.attach_store(tmp_path / "replay")
    seen: set[str] = set()
    for part in range(5):  # five checkpoints in a row, wrapping in between
        fill(replay, reference, LENGTHS[3 * part : 3 * part + 3], seed=part)
        state = checkpoint(replay, tmp_path / "checkpoint.pt")
        names = {chunk["file"] for chunk in state["chunks"]}
        assert len(names - seen) == 1  # exactly one new chunk per checkpoint
        seen |= names
        assert "frame_data" not in str(state)  # the frames are in the chunks, not the state
        restored = new_replay()
        restored.attach_store(tmp_path / "replay")
        restored.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=False))
        assert_same_samples(replay, restored)
        assert_matches(restored, reference)


def test_chunks_the_ring_overwrote_are_deleted_and_disk_stays_bounded(tmp_path: Path) -> None:
    replay, reference = new_replay(capacity=10), Reference()
    replay.attach_store(tmp_path / "replay")
    files_per_checkpoint = []
    for part in range(30):
        fill(replay, reference, [3], seed=part)
        state = checkpoint(replay, tmp_path / "checkpoint.pt")
        files = sorted(p.name for p in (tmp_path / "replay").glob(CHUNK_GLOB))
        assert files == sorted(chunk["file"] for chunk in state["chunks"])
        files_per_checkpoint.append(len(files))
    # 10 live transitions of 3-step episodes (4 frames each): 4 or 5 chunks, never more.
    assert max(files_per_checkpoint[5:]) <= 5
    assert not (
        tmp_path / "replay" / "chunk-f000000000000-000000000004-t000000000000-000000000003.pt"
    ).exists()


def test_a_crash_writing_the_checkpoint_leaves_the_previous_one_usable(tmp_path: Path) -> None:
    replay, reference = new_replay(), Reference()
    replay.attach_store(tmp_path / "replay")
    fill(replay, reference, LENGTHS[:5], seed=0)
    checkpoint(replay, tmp_path / "checkpoint.pt")
    expected = new_replay()  # the replay as checkpointed, rebuilt from scratch without a store
    fill(expected, Reference(), LENGTHS[:5], seed=0)

    fill(replay, reference, LENGTHS[5:], seed=1)  # wraps past everything the checkpoint holds
    state = replay.state_dict()  # writes its chunk ...

    def crash(file: Any) -> None:
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt("killed while writing checkpoint.pt")

    with pytest.raises(KeyboardInterrupt):  # ... then dies writing checkpoint.pt
        atomic_write(tmp_path / "checkpoint.pt", crash)
    assert state["chunks"]
    restored = new_replay()
    restored.attach_store(tmp_path / "replay")  # a new process: no collect ran
    restored.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=False))
    assert_same_samples(expected, restored)
    # The resumed run writes its own chunks; collecting after its checkpoint drops the orphan.
    fill(restored, Reference(), [], seed=0)
    checkpoint(restored, tmp_path / "checkpoint.pt")
    files = {p.name for p in (tmp_path / "replay").glob(CHUNK_GLOB)}
    assert files == {c["file"] for c in restored.state_dict()["chunks"]}


@pytest.mark.parametrize("damage", ["missing", "truncated", "altered"])
def test_a_damaged_chunk_is_an_error_naming_it(tmp_path: Path, damage: str) -> None:
    replay, reference = new_replay(), Reference()
    replay.attach_store(tmp_path / "replay")
    fill(replay, reference, LENGTHS[:4], seed=0)
    state = checkpoint(replay, tmp_path / "checkpoint.pt")
    path = tmp_path / "replay" / state["chunks"][0]["file"]
    payload = path.read_bytes()
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(payload[: len(payload) // 2])
    else:
        path.write_bytes(payload[:-20] + bytes(b ^ 1 for b in payload[-20:]))
    restored = new_replay()
    restored.attach_store(tmp_path / "replay")
    with pytest.raises(ChunkError, match=path.name):
        restored.load_state_dict(state)


def test_chunked_state_without_a_store_says_how_to_load_it(tmp_path: Path) -> None:
    replay = new_replay()
    replay.attach_store(tmp_path / "replay")
    fill(replay, Reference(), LENGTHS[:3], seed=0)
    with pytest.raises(RuntimeError, match="attach_store"):
        new_replay().load_state_dict(replay.state_dict())


# -- the online trainer on the real pixel walker -------------------------------------------------
class RecordFrames(gym.Wrapper):
    """Keeps every pixel frame the trainer sees (resets and steps), for the reference stacks."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.frames: list[np.ndarray] = []
        self.episodes: list[list[int]] = []

    def reset(self, **kwargs: Any) -> Any:
        observation, info = self.env.reset(**kwargs)
        self.episodes.append([len(self.frames)])
        self.frames.append(observation["pixels"].copy())
        return observation, info

    def step(self, action: Any) -> Any:
        result = self.env.step(action)
        self.episodes[-1].append(len(self.frames))
        self.frames.append(result[0]["pixels"].copy())
        return result


def online_trainer(capacity: int, seed: int = 0) -> OnlineTrainer:
    spec = registry.get("sac-curl-online")
    config = dataclasses.replace(
        spec.default_config(),
        batch_size=8,
        hidden_dim=32,
        num_filters=8,
        initial_random_steps=5,
        replay_capacity=capacity,
    )
    env = RecordFrames(gym.make(ENV_ID, time_limit_s=1.0))  # 20 agent steps per episode
    return make_trainer(spec, config, env, seed, torch.device("cpu"))


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_moving_to_its_own_device_is_free() -> None:
    replay = new_replay()
    assert replay.to("cpu") is replay and replay.to(torch.device("cpu")) is replay


def test_online_trainer_runs_past_its_capacity_with_exact_stacks() -> None:
    trainer = online_trainer(capacity=25)
    for _ in range(70):  # 3.5 episodes through a 25-transition ring
        trainer.step()
    env: RecordFrames = trainer.env
    stacker, expected = FrameStacker(K), []
    for episode in env.episodes:
        stacks = [stacker.reset(env.frames[episode[0]])]
        stacks += [stacker.push(env.frames[i]) for i in episode[1:]]
        expected += stacks[:-1]  # each step's obs (the final frame is only a next_obs)
    assert trainer.replay.transitions_added == 70 and len(trainer.replay) == 25
    batch = trainer.replay.get(torch.arange(25))
    assert np.array_equal(batch.obs.numpy(), np.stack(expected[-25:]))
    trainer.env.close()


def flat(state: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor of a nested state dict, by path."""
    if isinstance(state, torch.Tensor):
        return {prefix: state}
    if not isinstance(state, dict | list | tuple):
        return {}
    items = state.items() if isinstance(state, dict) else enumerate(state)
    return {k: v for key, value in items for k, v in flat(value, f"{prefix}/{key}").items()}


def test_online_trainer_resumes_from_incremental_checkpoints(tmp_path: Path) -> None:
    trainer = online_trainer(capacity=25)
    trainer.attach_store(tmp_path / "replay")
    for _ in range(2):  # two checkpoints, at the episode boundaries after 20 and 40 steps
        for _ in range(20):
            trainer.step()
        assert trainer.at_episode_boundary
        atomic_write(tmp_path / "checkpoint.pt", lambda f: torch.save(trainer.state_dict(), f))
        trainer.checkpoint_saved()
    for _ in range(10):
        trainer.step()
    continued = trainer.agent.state_dict()
    trainer.env.close()

    resumed = online_trainer(capacity=25)
    resumed.attach_store(tmp_path / "replay")
    resumed.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=False))
    for _ in range(10):
        resumed.step()
    after = resumed.agent.state_dict()
    resumed.env.close()
    assert flat(continued).keys() == flat(after).keys()
    assert all(torch.equal(flat(continued)[k], flat(after)[k]) for k in flat(continued))
    assert_same_samples(trainer.replay, resumed.replay)
