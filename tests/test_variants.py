"""Visual variants: re-rendering stored physics, the variant evaluation envs, and bad input.

One tiny real dataset (2 episodes: 20 + 10 steps) is built for the module; every test
re-renders it with real dm_control rendering into its own Minari root.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
import pytest
from datasets_helpers import TINY_RANDOM_ID, build_tiny_root, fresh_copy, run_cli

from benchmark.data.envs import make_walker_variant
from benchmark.data.variants import (
    DEFAULT,
    VARIANTS,
    VariantError,
    apply_appearance,
    get_variant,
    parse_variant,
)
from benchmark.datasets.card import STRIP_FRAMES, _frame_strip, write_card
from benchmark.datasets.rerender import (
    EXACT_KEYS,
    rerender_dataset,
    variant_dataset_id,
    variant_record,
)
from benchmark.datasets.store import DatasetError, build_record, digest_episodes, is_built
from benchmark.datasets.verify import verify_dataset
from benchmark.harness.results import load_results
from benchmark.harness.variant_eval import VARIANT_COLUMNS, parse_eval_variants
from benchmark.report.leaderboard import main as report_main
from benchmark.report.variants import load_variant_results, report_section

REPO = Path(__file__).resolve().parents[1]
OTHER_VARIANTS = [name for name in VARIANTS if name != DEFAULT]


@pytest.fixture(scope="module")
def built_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_root(tmp_path_factory.mktemp("minari-variants"), 30)


@pytest.fixture
def root(built_root: Path, minari_root: Path) -> Path:
    return fresh_copy(built_root, minari_root)


def _pixels(dataset: minari.MinariDataset) -> list[np.ndarray]:
    return [episode.observations["pixels"] for episode in dataset.iterate_episodes()]


def _reset_seeds(dataset: minari.MinariDataset) -> list[int]:
    metadata = dataset.storage.get_episode_metadata(dataset.episode_indices)
    return [int(meta["seed"]) for meta in metadata]


def test_default_variant_rerenders_the_original_frames_bit_for_bit(root: Path) -> None:
    source = minari.load_dataset(TINY_RANDOM_ID)
    variant = rerender_dataset(TINY_RANDOM_ID, DEFAULT, workers=1, progress=False)
    assert variant.id == "vorb-test/walker-walk/random-tiny-default-v0"
    for original, rendered in zip(_pixels(source), _pixels(variant), strict=True):
        np.testing.assert_array_equal(rendered, original)
    assert digest_episodes(variant.iterate_episodes()) == build_record(source)["digests"]
    assert variant.storage.metadata["jpeg_encoding"] is False


@pytest.mark.parametrize("name", OTHER_VARIANTS)
def test_variant_keeps_the_trajectories_and_changes_the_pixels(root: Path, name: str) -> None:
    source = minari.load_dataset(TINY_RANDOM_ID)
    seed = 7 if get_variant(name).seeded else 0
    variant = rerender_dataset(TINY_RANDOM_ID, name, seed=seed, workers=1, progress=False)
    assert variant.id == variant_dataset_id(TINY_RANDOM_ID, get_variant(name), seed)
    source_digests = build_record(source)["digests"]
    variant_digests = digest_episodes(variant.iterate_episodes())
    assert {k: variant_digests[k] for k in EXACT_KEYS} == {k: source_digests[k] for k in EXACT_KEYS}
    assert variant_digests["pixels"] != source_digests["pixels"]
    assert [len(e) for e in variant.iterate_episodes()] == [20, 10]  # episode boundaries
    size = get_variant(name).image_size
    for original, rendered in zip(_pixels(source), _pixels(variant), strict=True):
        assert rendered.shape == (len(original), size, size, 3)
        if size == original.shape[1]:
            assert (rendered != original).any(axis=(1, 2, 3)).all(), "a frame was left unchanged"
    record = variant_record(variant)
    assert (record["variant"], record["seed"], record["source"]) == (name, seed, TINY_RANDOM_ID)
    assert bool(record["appearance"]) == get_variant(name).seeded
    report = verify_dataset(variant.id, sample=4)  # digests and a re-render by its own env
    assert report.ok, report.lines()


@pytest.mark.parametrize("name", ["64px", "camera1", "distracting"])
def test_first_eval_frame_equals_the_variant_dataset_frame(root: Path, name: str) -> None:
    seed = 3 if get_variant(name).seeded else 0
    variant = rerender_dataset(TINY_RANDOM_ID, name, seed=seed, workers=1, progress=False)
    env = variant.recover_environment(eval_env=True)  # the env spec the dataset recorded
    assert env.spec.id == get_variant(name).env_id
    try:
        for seed, pixels in zip(_reset_seeds(variant), _pixels(variant), strict=True):
            observation, _ = env.reset(seed=seed)
            np.testing.assert_array_equal(observation["pixels"], pixels[0])
    finally:
        env.close()


def test_seeds_draw_different_appearances_and_the_same_seed_the_same(root: Path) -> None:
    frames = {}
    for seed in (0, 1, 0):
        env = gym.make(get_variant("distracting").env_id, variant_seed=seed, time_limit_s=1.0)
        observation, _ = env.reset(seed=11)
        frames.setdefault(seed, []).append(observation["pixels"])
        env.close()
    np.testing.assert_array_equal(frames[0][0], frames[0][1])
    assert (frames[0][0] != frames[1][0]).mean() > 0.3  # sky, floor and body all change


def test_appearance_applied_after_a_render_is_uploaded(root: Path) -> None:
    """A changed sky must reach the GL context that already holds the old texture."""
    fresh = make_walker_variant("background", 5)
    fresh.reset(seed=2)
    expected = fresh.render()
    fresh.close()
    env = make_walker_variant("background", 4)
    env.reset(seed=2)
    before = env.render()  # the context now holds seed 4's sky
    apply_appearance(env.physics, get_variant("background"), 5)
    after = env.render()
    env.close()
    assert (before != expected).any()
    np.testing.assert_array_equal(after, expected)


def test_bad_variant_names_and_seeds_are_clear_errors(root: Path) -> None:
    with pytest.raises(VariantError, match="unknown variant 'fog'; valid: default, 64px"):
        rerender_dataset(TINY_RANDOM_ID, "fog", progress=False)
    for seed in (-1, 2**32, 1.5, "3"):
        with pytest.raises(VariantError, match="variant seed"):
            rerender_dataset(TINY_RANDOM_ID, "colours", seed=seed, progress=False)
    with pytest.raises(VariantError, match=r"'64px' draws nothing from a seed.*colours"):
        rerender_dataset(TINY_RANDOM_ID, "64px", seed=3, progress=False)
    with pytest.raises(VariantError, match="variant seed"):
        gym.make(get_variant("colours").env_id, variant_seed=-2)
    with pytest.raises(VariantError, match="must be an integer"):
        parse_variant("colours:x")
    with pytest.raises(DatasetError, match="not built"):
        rerender_dataset("vorb-test/walker-walk/absent-v0", "colours", progress=False)
    assert not any(is_built(variant_dataset_id(TINY_RANDOM_ID, v, 0)) for v in VARIANTS.values())


def test_cli_rerenders_in_workers_and_rejects_a_bad_variant(root: Path) -> None:
    done = run_cli("rerender", TINY_RANDOM_ID, "--variant", "colours", "--seed", "2",
                   "--workers", "2", "--quiet", root=root)  # fmt: skip
    assert done.returncode == 0, done.stderr
    target = "vorb-test/walker-walk/random-tiny-colours-s2-v0"
    assert target in done.stdout and is_built(target)
    in_process = rerender_dataset(
        TINY_RANDOM_ID, "colours", seed=2, workers=1, target_id="vorb-test/one-v0", progress=False
    )
    for a, b in zip(_pixels(minari.load_dataset(target)), _pixels(in_process), strict=True):
        np.testing.assert_array_equal(a, b)  # worker count does not change the frames
    bad = run_cli("rerender", TINY_RANDOM_ID, "--variant", "fog", root=root)
    assert bad.returncode == 2 and "unknown variant 'fog'" in bad.stderr


def test_card_shows_the_variant_frames_beside_the_original(root: Path, tmp_path: Path) -> None:
    from PIL import Image

    source = minari.load_dataset(TINY_RANDOM_ID)
    for name in ("camera1", "64px"):
        variant = rerender_dataset(TINY_RANDOM_ID, name, workers=1, progress=False)
        markdown = write_card(variant.id, tmp_path / name)
        assert f"Visual variant `{name}`" in markdown.read_text()
        strip = np.asarray(Image.open(next((tmp_path / name).glob("*-frames.png"))))
        top = _frame_strip(source, STRIP_FRAMES)
        assert strip.shape == (2 * 84, top.shape[1], 3)  # 64 px frames shown at 84 px
        np.testing.assert_array_equal(strip[:84], top)
        if name == "camera1":
            np.testing.assert_array_equal(strip[84:], _frame_strip(variant, STRIP_FRAMES))


# -- the harness: --eval-variants and the report's generalisation gap ---------------------------
def _run(results: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "benchmark.run", "--profile", "smoke", "--device", "cpu"]
    return subprocess.run(
        [*command, "--results", str(results), "--algos", "bc-pixels", "--workers", "1", *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_run_evaluates_final_agents_on_variants_and_report_shows_the_gap(tmp_path: Path) -> None:
    results = tmp_path / "r"
    done = _run(results, "--eval-variants", "colours:1,camera1")
    assert done.returncode == 0, done.stderr[-3000:]
    evals = load_results(results)
    variants = load_variant_results(results)
    assert list(variants.columns) == list(VARIANT_COLUMNS)
    assert variants["variant"].tolist() == ["colours:1", "camera1"]
    final = evals.iloc[-1]
    assert (variants["update"] == final["update"]).all() and variants["return_mean"].notna().all()
    # the same reference scores normalise both: score differences follow return differences
    scale = (final["normalized_score"] - variants["normalized_score"]) / (
        final["return_mean"] - variants["return_mean"]
    )
    assert np.allclose(scale[np.isfinite(scale)], scale[np.isfinite(scale)].iloc[0])

    assert report_main(["--results", str(results), "--out", str(tmp_path / "rep")]) == 0
    text = (tmp_path / "rep" / "leaderboard.md").read_text()
    assert "## Visual variants (generalisation gap)" in text and "| bc-pixels | camera1 | 1 |" in text
    assert (tmp_path / "rep" / "figures" / "variants_gap.png").stat().st_size > 5_000


def test_eval_variants_of_another_resolution_or_name_are_refused(tmp_path: Path) -> None:
    refused = _run(tmp_path / "r", "--eval-variants", "colours,64px")
    assert refused.returncode == 2
    assert "'64px' renders 64x64 frames" in refused.stderr and "camera1" in refused.stderr
    unknown = _run(tmp_path / "r", "--eval-variants", "fog")
    assert unknown.returncode == 2 and "unknown variant 'fog'" in unknown.stderr
    assert not (tmp_path / "r" / "runs").exists()
    with pytest.raises(VariantError, match="repeats"):
        parse_eval_variants("colours,colours:0")


def test_report_has_no_variants_section_without_variant_tables(tmp_path: Path) -> None:
    assert report_section(tmp_path, "smoke", load_results(tmp_path), tmp_path / "out") == ""
    assert not (tmp_path / "out").exists()
