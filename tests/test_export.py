"""Exports read by the real consumers: torchrl, d3rlpy, and V-D4RL's reader logic."""

from __future__ import annotations

from pathlib import Path

import h5py
import minari
import numpy as np
import pytest
from datasets_helpers import TINY_RANDOM_ID, build_tiny_root, run_cli

from benchmark.datasets import DatasetError, d4rl, export
from benchmark.datasets.store import digest_episodes

TRANSITIONS = 45  # episodes of 20, 20 and 5 steps
HDF5_ID = export.hdf5_id(TINY_RANDOM_ID)
VD4RL_KEYS = {"observation", "action", "reward", "discount", "step_type"}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_tiny_root(tmp_path_factory.mktemp("minari-export"), TRANSITIONS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        export.export_minari_hdf5(TINY_RANDOM_ID, progress=False)
    return root


@pytest.fixture
def root(tiny_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_root))
    return tiny_root


@pytest.fixture
def original(root: Path) -> dict[str, np.ndarray]:
    """The source dataset's transitions, flat, with frames channels last as stored."""
    episodes = list(minari.load_dataset(TINY_RANDOM_ID).iterate_episodes())
    return {
        "pixels": np.concatenate([e.observations["pixels"][:-1] for e in episodes]),
        "next_pixels": np.concatenate([e.observations["pixels"][1:] for e in episodes]),
        "actions": np.concatenate([e.actions for e in episodes]),
        "rewards": np.concatenate([e.rewards for e in episodes]),
        "truncations": np.concatenate([e.truncations for e in episodes]),
    }


# -- minari-hdf5 and torchrl -----------------------------------------------------------------
def test_minari_hdf5_copy_is_bit_for_bit_and_raw(root: Path) -> None:
    source, copy = minari.load_dataset(TINY_RANDOM_ID), minari.load_dataset(HDF5_ID)
    assert (root / HDF5_ID / "data" / "main_data.hdf5").is_file()
    metadata = copy.storage.metadata
    assert metadata["data_format"] == "hdf5" and metadata["jpeg_encoding"] is False
    assert digest_episodes(copy.iterate_episodes()) == digest_episodes(source.iterate_episodes())
    for episode_a, episode_b in zip(
        source.iterate_episodes(), copy.iterate_episodes(), strict=True
    ):
        for key in ("pixels", "state", "physics"):
            a, b = episode_a.observations[key], episode_b.observations[key]
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    seeds = [m.get("seed") for m in source.storage.get_episode_metadata(range(3))]
    assert [m.get("seed") for m in copy.storage.get_episode_metadata(range(3))] == seeds
    for key in ("ref_min_score", "ref_max_score", "env_spec", "eval_env_spec", "description"):
        assert metadata[key] == source.storage.metadata[key]
    assert metadata["vorb_build"]["exported_from"] == TINY_RANDOM_ID


def test_torchrl_samples_frames_equal_to_the_original(
    root: Path, original: dict[str, np.ndarray], tmp_path: Path
) -> None:
    import torch

    replay = export.torchrl_replay(HDF5_ID, batch_size=16, root=tmp_path / "torchrl")
    assert len(replay) == TRANSITIONS
    torch.manual_seed(0)
    batch, info = replay.sample(return_info=True)
    index = info["index"].numpy()
    np.testing.assert_array_equal(batch["observation", "pixels"].numpy(), original["pixels"][index])
    np.testing.assert_array_equal(
        batch["next", "observation", "pixels"].numpy(), original["next_pixels"][index]
    )
    np.testing.assert_array_equal(batch["action"].numpy(), original["actions"][index])
    np.testing.assert_array_equal(batch["next", "reward"].numpy()[:, 0], original["rewards"][index])
    np.testing.assert_array_equal(
        batch["next", "truncated"].numpy()[:, 0], original["truncations"][index]
    )
    everything = replay[:]
    np.testing.assert_array_equal(everything["observation", "pixels"].numpy(), original["pixels"])
    # Loaded again from torchrl's own memory-mapped copy (no conversion this time).
    from torchrl.data.datasets.minari_data import MinariExperienceReplay

    again = MinariExperienceReplay(HDF5_ID, batch_size=16, root=tmp_path / "torchrl")
    np.testing.assert_array_equal(again[:]["action"].numpy(), original["actions"])


def test_plain_torchrl_still_zeroes_the_data(root: Path, tmp_path: Path) -> None:
    """The torchrl bug :func:`export.torchrl_replay` works around; when this fails, torchrl has
    fixed it: drop the workaround and this test."""
    from torchrl.data.datasets.minari_data import MinariExperienceReplay

    replay = MinariExperienceReplay(
        HDF5_ID, batch_size=16, root=tmp_path / "torchrl", load_from_local_minari=True
    )
    assert len(replay) == TRANSITIONS
    assert not replay[:]["observation", "pixels"].any()
    assert not replay[:]["action"].any()


# -- vd4rl -----------------------------------------------------------------------------------
def vd4rl_reader(folder: Path, frame_stack: int = 3) -> dict[str, np.ndarray]:
    """V-D4RL's reader logic, re-implemented (V-D4RL is not a package, and its modules import its
    own environment code): ``drqbc/utils.py`` ``load_offline_dataset_into_buffer`` reads each
    ``*.hdf5`` in sorted order whole and feeds its rows to ``EfficientReplayBuffer``
    (``drqbc/numpy_replay_buffer.py``), which at a first step writes ``frame_stack`` copies of the
    frame (no transition), and at any other step writes the frame with the row's action, reward
    and discount as a transition. A sample at slot j (nstep 1) is obs = slots j-k..j-1, action,
    reward and discount of slot j, next obs = slots j-k+1..j.
    """
    frames, actions, rewards, discounts, valid = [], [], [], [], []
    for path in sorted(folder.glob("*.hdf5")):
        with h5py.File(path, "r") as file:
            rows = {key: file[key][:] for key in file}
        assert all(len(v) == len(rows["reward"]) for v in rows.values())
        for i in range(len(rows["reward"])):
            first = rows["step_type"][i] == 0
            for _ in range(frame_stack if first else 1):
                frames.append(rows["observation"][i])
                actions.append(rows["action"][i])
                rewards.append(rows["reward"][i])
                discounts.append(rows["discount"][i])
                valid.append(not first)
    slots = np.flatnonzero(valid)
    frames_array = np.stack(frames)
    stack = np.arange(-frame_stack, 0)
    return {
        "observations": frames_array[slots[:, None] + stack].reshape(len(slots), -1, 84, 84),
        "next_observations": frames_array[slots[:, None] + stack + 1].reshape(
            len(slots), -1, 84, 84
        ),
        "actions": np.stack(actions)[slots],
        "rewards": np.asarray(rewards)[slots],
        "discounts": np.asarray(discounts)[slots],
    }


def test_vd4rl_layout(root: Path, tmp_path: Path) -> None:
    folder = export.export_vd4rl(
        TINY_RANDOM_ID, tmp_path / "vd4rl", progress=False, episodes_per_file=2
    )
    files = sorted(folder.glob("*.hdf5"))
    assert [f.name for f in files] == ["000000.hdf5", "000001.hdf5"]
    step_types = []
    for path in files:
        with h5py.File(path, "r") as file:
            assert set(file) == VD4RL_KEYS
            assert file["observation"].dtype == np.uint8
            assert file["observation"].shape[1:] == (3, 84, 84)
            assert file["action"].dtype == file["reward"].dtype == np.float32
            step_types.append(file["step_type"][:])
    expected = [0, *[1] * 19, 2] * 2 + [0, 1, 1, 1, 1, 2]  # T + 1 rows an episode
    assert np.concatenate(step_types).tolist() == expected


def test_vd4rl_reader_sees_the_d4rl_transitions(root: Path, tmp_path: Path) -> None:
    folder = export.export_vd4rl(TINY_RANDOM_ID, tmp_path / "vd4rl", progress=False)
    read = vd4rl_reader(folder)
    reference = d4rl.qlearning_dataset(TINY_RANDOM_ID)
    for key in ("observations", "next_observations", "actions", "rewards"):
        np.testing.assert_array_equal(read[key], reference[key])
    np.testing.assert_array_equal(read["discounts"], 1.0 - reference["terminals"])


def test_failed_export_leaves_nothing(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = iter(range(100))
    real = export.vd4rl_episode

    def fail_on_third(episode: object) -> dict[str, np.ndarray]:
        if next(calls) == 2:
            raise KeyboardInterrupt  # as a kill during the export would
        return real(episode)

    monkeypatch.setattr(export, "vd4rl_episode", fail_on_third)
    parent = tmp_path / "exports"
    with pytest.raises(KeyboardInterrupt):
        export.export_vd4rl(TINY_RANDOM_ID, parent / "out", progress=False, episodes_per_file=1)
    assert list(parent.iterdir()) == []  # neither the folder nor its staging copy


def test_existing_destination_needs_force(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "exports" / "vd4rl"
    out.mkdir(parents=True)
    (out / "old.txt").write_text("old")
    with pytest.raises(FileExistsError, match="--force"):
        export.export_vd4rl(TINY_RANDOM_ID, out, progress=False)
    export.export_vd4rl(TINY_RANDOM_ID, out, force=True, progress=False)
    assert not (out / "old.txt").exists() and (out / "000000.hdf5").is_file()
    assert [p.name for p in out.parent.iterdir()] == ["vd4rl"]  # no staging or old copy left


# -- d3rlpy ----------------------------------------------------------------------------------
def test_d3rlpy_transitions_match_the_original(root: Path, original: dict[str, np.ndarray]) -> None:
    dataset = export.to_d3rlpy(TINY_RANDOM_ID)
    assert [e.size() for e in dataset.episodes] == [21, 21, 6]  # T + 1 frames each
    assert dataset.transition_count == TRANSITIONS
    assert not any(e.terminated for e in dataset.episodes)  # time limits, not terminations
    picked = [
        dataset.transition_picker(episode, t)
        for episode in dataset.episodes
        for t in range(episode.transition_count)
    ]
    observations = np.stack([p.observation for p in picked])
    next_observations = np.stack([p.next_observation for p in picked])
    assert observations.shape == (TRANSITIONS, 9, 84, 84) and observations.dtype == np.uint8
    newest = observations[:, -3:].transpose(0, 2, 3, 1)  # channels last again
    np.testing.assert_array_equal(newest, original["pixels"])
    np.testing.assert_array_equal(
        next_observations[:, -3:].transpose(0, 2, 3, 1), original["next_pixels"]
    )
    np.testing.assert_array_equal(np.stack([p.action for p in picked]), original["actions"])
    rewards = np.stack([p.reward for p in picked])[:, 0]
    np.testing.assert_array_equal(rewards, original["rewards"].astype(np.float32))
    assert not observations[0, :6].any()  # d3rlpy zero-pads at episode starts (V-D4RL repeats)


def test_d3rlpy_dump_loads_back(root: Path, tmp_path: Path) -> None:
    from d3rlpy.dataset import FrameStackTransitionPicker, InfiniteBuffer, ReplayBuffer

    folder = export.export_dataset(TINY_RANDOM_ID, "d3rlpy", tmp_path / "d3rlpy", progress=False)
    with (folder / export.D3RLPY_FILE).open("rb") as file:
        loaded = ReplayBuffer.load(
            file, InfiniteBuffer(), transition_picker=FrameStackTransitionPicker(3)
        )
    fresh = export.to_d3rlpy(TINY_RANDOM_ID)
    assert loaded.transition_count == TRANSITIONS
    for a, b in zip(loaded.episodes, fresh.episodes, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.rewards, b.rewards)


def test_d3rlpy_trains_on_the_export(root: Path, tmp_path: Path) -> None:
    from d3rlpy.algos import BCConfig
    from d3rlpy.logging import NoopAdapterFactory
    from d3rlpy.preprocessing import PixelObservationScaler

    dataset = export.to_d3rlpy(TINY_RANDOM_ID)
    bc = BCConfig(batch_size=8, observation_scaler=PixelObservationScaler()).create(device="cpu:0")
    history = bc.fit(
        dataset,
        n_steps=2,
        n_steps_per_epoch=2,
        show_progress=False,
        logger_adapter=NoopAdapterFactory(),
    )
    assert np.isfinite(history[-1][1]["loss"])
    stacked = np.repeat(dataset.episodes[0].observations[:1], 3, axis=1)  # (1, 9, 84, 84)
    assert bc.predict(stacked).shape == (1, 6)


# -- errors ----------------------------------------------------------------------------------
def test_bad_format_and_id_are_named_with_the_valid_ones(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid formats: minari-hdf5, vd4rl, d3rlpy"):
        export.export_dataset(TINY_RANDOM_ID, "parquet")
    with pytest.raises(DatasetError, match="recipe ids: "):
        export.export_vd4rl("vorb/walker-walk/nonexistent-v0", tmp_path / "x", progress=False)
    with pytest.raises(ValueError, match="id of its own"):
        export.export_minari_hdf5(TINY_RANDOM_ID, TINY_RANDOM_ID, progress=False)


def test_cli_export(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-vd4rl"
    done = run_cli(
        "export", TINY_RANDOM_ID, "--format", "vd4rl", "--out", str(out), "--quiet", root=root
    )
    assert done.returncode == 0, done.stderr
    assert f"-> vd4rl: {out}" in done.stdout and (out / "000000.hdf5").is_file()
    bad = run_cli("export", TINY_RANDOM_ID, "--format", "hdf5", root=root)
    assert bad.returncode == 2
    assert "invalid choice: 'hdf5'" in bad.stderr and "minari-hdf5" in bad.stderr
