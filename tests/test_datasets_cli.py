"""The datasets CLI: verify (good, tampered, corrupt), download/publish via a folder remote,
cards, and clear errors on bad input. One tiny dataset is built for the whole module."""

from __future__ import annotations

from pathlib import Path

import minari
import numpy as np
import pyarrow as pa
import pytest
from datasets_helpers import RANDOM_ID, TINY_RANDOM_ID, build_tiny_root, fresh_copy, run_cli

from benchmark.datasets import recipes as recipes_module
from benchmark.datasets.__main__ import main
from benchmark.datasets.verify import verify_dataset

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_root(tmp_path_factory.mktemp("minari-cli"), 30)


@pytest.fixture
def root(built_root: Path, minari_root: Path) -> Path:
    return fresh_copy(built_root, minari_root)


def _episode_file(root: Path, episode: int = 0) -> Path:
    return next((root / TINY_RANDOM_ID / "data" / str(episode)).glob("*.arrow"))


def test_verify_passes_on_a_good_dataset(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", TINY_RANDOM_ID, "--sample", "4"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "bit-exact" in out and "pixels re-rendered" in out


def test_verify_fails_on_a_tampered_reward(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _episode_file(root)
    with pa.ipc.open_file(path) as reader:
        table = reader.read_all()
    rewards = table.column("rewards").to_numpy().copy()
    rewards[3] += 0.5
    table = table.set_column(table.schema.get_field_index("rewards"), "rewards", pa.array(rewards))
    with pa.ipc.new_file(path, table.schema) as writer:
        writer.write_table(table)
    report = verify_dataset(TINY_RANDOM_ID, sample=2)
    assert not report.ok  # a real change of 0.5 moves the rounded digest too
    assert [c.name for c in report.checks if not c.ok] == ["rewards_rounded"]
    assert main(["verify", TINY_RANDOM_ID, "--sample", "2"]) == 1
    assert "[FAIL] rewards_rounded" in capsys.readouterr().out


def test_truncated_file_is_a_clear_error(root: Path) -> None:
    path = _episode_file(root, 1)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = run_cli("verify", TINY_RANDOM_ID, root=root)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "corrupt or truncated" in result.stderr and "Traceback" not in result.stderr


def test_unknown_id_is_a_clear_error(root: Path) -> None:
    result = run_cli("build", "vorb/walker-walk/nope-v0", root=root)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "valid ids" in result.stderr and RANDOM_ID in result.stderr


def test_missing_recipe_field_is_a_clear_error(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    recipes_dir = tmp_path / "recipes"
    recipes_dir.mkdir()
    text = (REPO / "datasets" / "walker-walk-random.toml").read_text()
    (recipes_dir / "bad.toml").write_text(text.replace('env_id = "vorb/walker-walk-pixels-v0"', ""))
    monkeypatch.setattr(recipes_module, "RECIPES_DIR", recipes_dir)
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "'env_id'" in err


def test_list_shows_built_state(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert RANDOM_ID in out and "not built" in out


def test_publish_then_download_through_a_folder_remote(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    monkeypatch.setenv("MINARI_REMOTE", f"file://{remote}")
    assert main(["publish", TINY_RANDOM_ID]) == 0
    assert (remote / TINY_RANDOM_ID / "data" / "metadata.json").is_file()
    fresh = tmp_path / "fresh-root"
    fresh.mkdir()
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(fresh))
    assert main(["download", TINY_RANDOM_ID]) == 0
    downloaded = minari.load_dataset(TINY_RANDOM_ID)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    original = minari.load_dataset(TINY_RANDOM_ID)
    for a, b in zip(original.iterate_episodes(), downloaded.iterate_episodes(), strict=True):
        assert np.array_equal(a.observations["pixels"], b.observations["pixels"])
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(fresh))
    assert main(["verify", TINY_RANDOM_ID, "--sample", "2"]) == 0


def test_download_of_an_absent_dataset_is_a_clear_error(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MINARI_REMOTE", f"file://{tmp_path}")
    assert main(["download", "vorb/walker-walk/expert-v0"]) == 2
    assert "expert" in capsys.readouterr().err


def test_card_writes_markdown_and_png(root: Path, tmp_path: Path) -> None:
    assert main(["card", TINY_RANDOM_ID, "--out", str(tmp_path / "cards")]) == 0
    markdown = next((tmp_path / "cards").glob("*.md")).read_text()
    png = next((tmp_path / "cards").glob("*.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "transitions | 30" in markdown and "return mean" in markdown
    assert "reference scores" in markdown and png.name in markdown


def test_build_off_a_terminal_prints_plain_progress_lines(minari_root: Path) -> None:
    """stderr captured (a log, CI): whole lines, as the runner writes, not tqdm's bar redraws."""
    args = ("build", RANDOM_ID, "--transitions", "100", "--episode-steps", "20")
    result = run_cli(*args, "--observation", "state", "--workers", "1", root=minari_root)
    assert result.returncode == 0, result.stderr
    lines = [text for text in result.stderr.splitlines() if "frame" in text]
    assert "\r" not in result.stderr and "frame/s" not in result.stderr  # no bar
    assert "started: 100 frames to go" in lines[0]
    assert any("40 of 100 frames (40%)" in text for text in lines[1:-1]), lines  # 20 an episode
    assert "finished: 100 of 100 frames (100%)" in lines[-1]
    quiet = run_cli(*args, "--observation", "state", "--force", "--quiet", root=minari_root)
    assert quiet.returncode == 0 and "frames" not in quiet.stderr, quiet.stderr
