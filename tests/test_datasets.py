"""Dataset build, storage, determinism and atomicity, on tiny real datasets (20-step episodes)."""

from __future__ import annotations

import dataclasses
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import minari
import numpy as np
import pytest
from datasets_helpers import (
    RANDOM_ID,
    REPO,
    TINY_RANDOM_ID,
    TINY_TIME_LIMIT_S,
    build_tiny_root,
    write_tiny_replay,
)

from benchmark.data.envs import ENV_ID
from benchmark.datasets import DatasetError, build_dataset, known_dataset_ids, load_or_explain
from benchmark.datasets import recipes as recipes_module
from benchmark.datasets.build import _plan, _tasks
from benchmark.datasets.collect import collect_episode
from benchmark.datasets.recipes import RecipeError, get_recipe, load_recipe
from benchmark.datasets.store import (
    REWARD_GRID,
    STAGING_DIR,
    Digester,
    build_record,
    is_built,
    reference_scores,
)
from benchmark.datasets.verify import digest_checks
from benchmark.harness import evaluation

TRANSITIONS = 50  # 3 episodes: 20 + 20 + a cut-short 10


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Minari root holding a tiny random dataset, built once for the module."""
    return build_tiny_root(tmp_path_factory.mktemp("minari-datasets"), TRANSITIONS)


@pytest.fixture
def tiny(
    tiny_root: Path, minari_root: Path, monkeypatch: pytest.MonkeyPatch
) -> minari.MinariDataset:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tiny_root))
    return load_or_explain(TINY_RANDOM_ID)


# -- recipes -----------------------------------------------------------------------------------
def test_recipes_parse_and_cover_the_five_qualities() -> None:
    ids = known_dataset_ids()
    qualities = {"random", "medium-replay", "medium", "medium-expert", "expert"}
    assert set(ids) == {f"vorb/walker-walk/{q}-v0" for q in qualities}
    for dataset_id in ids:
        recipe = get_recipe(dataset_id)
        assert recipe.env_id == ENV_ID and recipe.author == "VORB" and recipe.data_seed == 0
        assert recipe.stochastic_actions
    assert get_recipe("vorb/walker-walk/medium-replay-v0").transitions is None
    assert get_recipe("vorb/walker-walk/medium-expert-v0").source.datasets == (
        "vorb/walker-walk/medium-v0",
        "vorb/walker-walk/expert-v0",
    )


def test_recipe_with_missing_field_names_field_and_file(tmp_path: Path) -> None:
    text = (REPO / "datasets" / "walker-walk-random.toml").read_text()
    broken = tmp_path / "broken.toml"
    broken.write_text("\n".join(x for x in text.splitlines() if not x.startswith("data_seed")))
    with pytest.raises(RecipeError, match=r"broken\.toml.*'data_seed'"):
        load_recipe(broken)
    broken.write_text(text.replace('kind = "random"', 'kind = "magic"'))
    with pytest.raises(RecipeError, match=r"broken\.toml.*source\.kind"):
        load_recipe(broken)
    broken.write_text("colour = 'blue'\n" + text)
    with pytest.raises(RecipeError, match=r"unknown field.*colour"):
        load_recipe(broken)


def test_unknown_id_lists_valid_ids() -> None:
    with pytest.raises(RecipeError, match=r"nope-v0.*valid ids:.*random-v0"):
        build_dataset("vorb/walker-walk/nope-v0", progress=False)


def test_load_or_explain_says_how_to_build() -> None:
    with pytest.raises(DatasetError, match=r"python -m benchmark\.datasets build " + RANDOM_ID):
        load_or_explain(RANDOM_ID)


def test_resized_build_may_not_take_the_recipe_id() -> None:
    with pytest.raises(ValueError, match="own id"):
        build_dataset(RANDOM_ID, transitions=10, target_id=RANDOM_ID, progress=False)


# -- the built dataset -------------------------------------------------------------------------
def test_layout_metadata_and_stats(tiny: minari.MinariDataset) -> None:
    assert tiny.total_steps == TRANSITIONS and tiny.total_episodes == 3
    metadata = tiny.storage.metadata
    assert metadata["jpeg_encoding"] is False and metadata["data_format"] == "arrow"
    assert tiny.spec.env_spec.id == ENV_ID and f'"id": "{ENV_ID}"' in metadata["eval_env_spec"]
    assert tiny.spec.env_spec.kwargs["time_limit_s"] == TINY_TIME_LIMIT_S
    assert metadata["author"] == {"VORB"} and metadata["code_permalink"]
    assert any(r.startswith("minari==") for r in metadata["requirements"])
    episodes = list(tiny.iterate_episodes())
    assert [len(e.actions) for e in episodes] == [20, 20, 10]
    for episode in episodes:  # frames once: N+1 observations, no stacks
        assert episode.observations["pixels"].shape == (len(episode.actions) + 1, 84, 84, 3)
        assert episode.observations["state"].shape == (len(episode.actions) + 1, 24)
        assert episode.observations["physics"].shape == (len(episode.actions) + 1, 18)
        assert episode.truncations[-1] and not episode.terminations.any()
    stats = build_record(tiny)["stats"]
    returns = [float(e.rewards.sum()) for e in episodes]
    assert stats["episodes"] == 3 and stats["transitions"] == TRANSITIONS
    assert stats["return_mean"] == pytest.approx(np.mean(returns))
    assert stats["bytes_on_disk"] > 0 and stats["build_seconds"] > 0


def test_frames_round_trip_losslessly(tiny: minari.MinariDataset) -> None:
    plan = _plan(RANDOM_ID, TRANSITIONS, TINY_TIME_LIMIT_S, 1, TINY_RANDOM_ID)
    collected = collect_episode(_tasks(plan)[0])
    stored = next(iter(tiny.iterate_episodes()))
    assert np.array_equal(stored.observations["pixels"], collected.pixels)
    assert np.array_equal(stored.observations["physics"], collected.physics)
    assert np.array_equal(stored.actions, collected.actions)


def test_episode_files_are_zstd_compressed_and_small(tiny: minari.MinariDataset) -> None:
    import pyarrow.ipc

    files = sorted(Path(tiny.storage.data_path).rglob("*.arrow"))
    assert files, "no Arrow IPC files written"
    with pyarrow.ipc.open_file(files[0]) as reader:
        batch = reader.get_batch(0)
        assert reader.stats.num_record_batches == 1 and batch.num_rows > 0
    # IPC buffers of a compressed file start with their codec's frame magic; zstd's is 28b52ffd.
    assert b"\x28\xb5\x2f\xfd" in files[0].read_bytes()
    frame_bytes = sum(f.stat().st_size for f in files) / tiny.total_steps
    assert frame_bytes < 84 * 84 * 3  # smaller than one raw frame: the frames are compressed


def test_normalized_score_uses_reference_scores(tiny: minari.MinariDataset) -> None:
    low, high = tiny.storage.metadata["ref_min_score"], tiny.storage.metadata["ref_max_score"]
    assert high > low
    score = minari.get_normalized_score(tiny, np.array([low, high]))
    assert np.allclose(score, [0.0, 1.0])


def test_short_episode_variants_scale_the_references(tiny: minari.MinariDataset) -> None:
    full_low, full_high, _ = reference_scores()
    metadata = tiny.storage.metadata
    fraction = TINY_TIME_LIMIT_S / 25.0  # 20 of 500 agent steps
    assert metadata["ref_min_score"] == pytest.approx(full_low * fraction)
    assert metadata["ref_max_score"] == pytest.approx(full_high * fraction)


def test_reference_sources_are_repository_paths(tiny: minari.MinariDataset) -> None:
    """Metadata names the returns file relative to the repository, never the build machine's
    folders (the same file wherever the repository is cloned)."""
    source = build_record(tiny)["ref_scores_source"]
    assert source == "datasets/policies/returns.json, scaled by 0.04 for 1 s episodes"
    assert evaluation.reference_scores().source == "datasets/policies/returns.json"
    assert (REPO / "datasets" / "policies" / "returns.json").is_file()


def test_recover_environment_in_a_fresh_process(
    tiny: minari.MinariDataset, tiny_root: Path
) -> None:
    # No `import benchmark`: the stored spec alone must rebuild the environment.
    code = (
        "import minari\n"
        f"ds = minari.load_dataset({TINY_RANDOM_ID!r})\n"
        "env = ds.recover_environment(eval_env=True)\n"
        "obs, _ = env.reset(seed=0)\n"
        "assert obs['pixels'].shape == (84, 84, 3), obs['pixels'].shape\n"
        "env.close()\n"
        "print('recovered', env.spec.id)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**__import__("os").environ, "MINARI_DATASETS_PATH": str(tiny_root)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"recovered {ENV_ID}" in result.stdout


def test_same_recipe_same_data_whatever_the_worker_count(tiny: minari.MinariDataset) -> None:
    again = build_dataset(
        RANDOM_ID,
        transitions=TRANSITIONS,
        time_limit_s=TINY_TIME_LIMIT_S,
        workers=2,
        target_id="vorb-test/walker-walk/random-tiny-2workers-v0",
        progress=False,
    )
    assert build_record(again)["digests"] == build_record(tiny)["digests"]
    for first, second in zip(tiny.iterate_episodes(), again.iterate_episodes(), strict=True):
        assert np.array_equal(first.actions, second.actions)
        assert np.array_equal(first.observations["state"], second.observations["state"])
    shutil.rmtree(Path(again.storage.data_path).parent)


def test_killed_build_leaves_nothing_and_rerun_succeeds(minari_root: Path) -> None:
    target = "vorb-test/walker-walk/random-killed-v0"
    code = (
        "from benchmark.datasets import build_dataset\n"
        f"build_dataset({RANDOM_ID!r}, transitions=400, time_limit_s=1.0, workers=1, "
        f"target_id={target!r}, progress=False)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    staging = minari_root / STAGING_DIR
    deadline = time.monotonic() + 120
    while not list(staging.rglob("*.arrow")) and time.monotonic() < deadline:
        assert process.poll() is None, "the build ended before it could be killed"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(staging.rglob("*.arrow")), "killed before any episode was written"
    assert not is_built(target) and not (minari_root / target).exists()
    dataset = build_dataset(
        RANDOM_ID, transitions=30, time_limit_s=1.0, workers=1, target_id=target, progress=False
    )
    assert dataset.total_steps == 30 and is_built(target)
    assert not list(staging.rglob("*.arrow")), "leftovers of the killed build remain"


def test_replay_source_replays_seeds_and_actions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipes_dir = tmp_path / "recipes"
    recipes_dir.mkdir()
    write_tiny_replay(tmp_path / "replay.npz", episodes=2, length=20)
    text = (REPO / "datasets" / "walker-walk-medium-replay.toml").read_text()
    text = text.replace("datasets/policies/medium_replay.npz", str(tmp_path / "replay.npz"))
    (recipes_dir / "walker-walk-medium-replay.toml").write_text(text)
    monkeypatch.setattr(recipes_module, "RECIPES_DIR", recipes_dir)
    replay_id = "vorb/walker-walk/medium-replay-v0"
    dataset = build_dataset(
        replay_id,
        time_limit_s=1.0,
        workers=1,
        target_id="vorb-test/walker-walk/replay-tiny-v0",
        progress=False,
    )
    with np.load(tmp_path / "replay.npz") as replay:
        actions = replay["actions"]
    stored = np.concatenate([e.actions for e in dataset.iterate_episodes()])
    assert dataset.total_episodes == 2 and np.array_equal(stored, actions)
    seeds = [m["seed"] for m in dataset.storage.get_episode_metadata(range(2))]
    assert seeds == [100, 101]


# -- behaviour-policy recipes (need the trained checkpoints) ------------------------------------
def _need_checkpoints() -> None:
    for name in ("medium", "expert"):
        path = REPO / "datasets" / "policies" / f"{name}.pt"
        if not path.is_file():
            pytest.skip(f"behaviour checkpoint {path} absent (train-behaviour writes it)")


def _build_tiny_medium_expert(target: str) -> None:
    """Build a tiny medium-expert (its two parts first) and check it concatenates them."""
    mixed = build_dataset(
        "vorb/walker-walk/medium-expert-v0",
        transitions=40,
        time_limit_s=1.0,
        workers=1,
        target_id=target,
        progress=False,
    )
    stem = target.rsplit("-v", 1)[0]
    medium, expert = (
        load_or_explain(f"{stem}-part-{name}-n20-ep20-v0") for name in ("medium", "expert")
    )
    assert mixed.total_steps == 40 and medium.total_steps == expert.total_steps == 20
    parts = [np.concatenate([e.actions for e in d.iterate_episodes()]) for d in (medium, expert)]
    mixed_actions = np.concatenate([e.actions for e in mixed.iterate_episodes()])
    assert np.array_equal(mixed_actions, np.concatenate(parts))
    assert np.abs(mixed_actions).max() <= 1.0 and not np.array_equal(parts[0], parts[1])


def test_policy_and_concat_code_paths_with_untrained_actors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    from baselines.sac_curl import SACCURLAgent
    from benchmark.datasets.policies import save_checkpoint
    from benchmark.datasets.train_behaviour import behaviour_sac_config

    recipes_dir = tmp_path / "recipes"
    recipes_dir.mkdir()
    config = behaviour_sac_config()
    for seed, name in enumerate(("medium", "expert")):
        torch.manual_seed(seed)
        actor = SACCURLAgent(config, (24,), 6, "cpu").actor
        save_checkpoint(
            tmp_path / f"{name}.pt", actor.state_dict(), dataclasses.asdict(config), 24, 6, {}
        )
    for name in ("medium", "expert", "medium-expert"):
        text = (REPO / "datasets" / f"walker-walk-{name}.toml").read_text()
        text = text.replace("datasets/policies/", f"{tmp_path}/")
        (recipes_dir / f"walker-walk-{name}.toml").write_text(text)
    monkeypatch.setattr(recipes_module, "RECIPES_DIR", recipes_dir)
    _build_tiny_medium_expert("vorb-test/walker-walk/me-untrained-v0")


def test_policy_and_concat_recipes_build() -> None:
    _need_checkpoints()
    _build_tiny_medium_expert("vorb-test/walker-walk/medium-expert-tiny-v0")


def test_full_build_digests_are_written_back_atomically(tmp_path: Path) -> None:
    (tmp_path / "recipes").mkdir()
    recipe_path = tmp_path / "recipes" / "walker-walk-random.toml"
    recipe_path.write_text((REPO / "datasets" / "walker-walk-random.toml").read_text())
    before = load_recipe(recipe_path)
    digests = {key: f"{i:064x}" for i, key in enumerate(recipes_module.DIGEST_KEYS)}
    recipes_module.write_digests(before, digests)
    after = load_recipe(recipe_path)
    assert after.digests == digests
    assert dataclasses.replace(after, digests={}) == dataclasses.replace(before, digests={})
    assert list(recipe_path.parent.iterdir()) == [recipe_path]  # no temporary file left


# -- the rewards' digest across CPUs -------------------------------------------------------------
def _rewards_of_one_real_episode() -> np.ndarray:
    task = _tasks(_plan(RANDOM_ID, None, None, 1, None, "state"))[0]
    return collect_episode(dataclasses.replace(task, max_steps=100)).rewards


def _digests_of(rewards: np.ndarray) -> tuple[dict[str, str], float]:
    digester = Digester()
    digester.update({"rewards": rewards})
    return digester.hexdigests(), digester.rewards_margin


def test_rounded_rewards_digest_ignores_last_bit_differences_and_nothing_more() -> None:
    """NumPy's exp differs by up to 4 ulp between CPUs with and without AVX-512: the exact
    digest sees that, the rounded one must not; a change of one grid step must show."""
    rewards = _rewards_of_one_real_episode()
    four_ulp = rewards.copy()
    for _ in range(4):
        four_ulp = np.nextafter(four_ulp, np.inf)
    digests, margin = _digests_of(rewards)
    assert margin > float(np.max(np.abs(four_ulp - rewards)))  # the data leave room for 4 ulp
    shifted, _ = _digests_of(four_ulp)
    assert shifted["rewards"] != digests["rewards"]
    assert shifted["rewards_rounded"] == digests["rewards_rounded"]
    one_step = rewards.copy()
    one_step[37] += REWARD_GRID
    assert _digests_of(one_step)[0]["rewards_rounded"] != digests["rewards_rounded"]


def test_digest_checks_take_rewards_rounded_where_the_recipe_has_that_digest() -> None:
    committed = {key: f"{i:064x}" for i, key in enumerate(recipes_module.DIGEST_KEYS)}
    other_cpu = {**committed, "rewards": "f" * 64}
    checks = {check.name: check for check in digest_checks(other_cpu, committed, 1e-12)}
    assert all(check.ok for check in checks.values())
    assert "last bits" in checks["rewards digest"].detail
    assert "1.0e-12" in checks["rewards digest"].detail
    bad = {**committed, "rewards_rounded": "0" * 64, "state": "0" * 64}
    assert [c.name for c in digest_checks(bad, committed) if not c.ok] == [
        "state",
        "rewards_rounded",
    ]
    older = {k: v for k, v in committed.items() if k != "rewards_rounded"}
    assert [c.name for c in digest_checks(other_cpu, older) if not c.ok] == ["rewards"]
