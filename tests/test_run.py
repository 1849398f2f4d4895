"""The CLI in-process: selection, bad input, and failure isolation with a diverging baseline."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark import run
from benchmark.harness import profiles, registry, runner
from benchmark.harness.registry import BaselineSpec
from benchmark.harness.results import CellPaths, load_metrics, load_results


def test_help_lists_baselines_datasets_and_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for name in registry.names():
        assert name in text and registry.get(name).summary in text
    assert "vorb/walker-walk/medium-expert-v0" in text
    for profile in profiles.PROFILES.values():
        assert profile.describe() in text


def test_plan_runs_online_baselines_once_per_seed(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--plan", "--profile", "demo", "--seeds", "0", "5"]
    assert (
        run.main([*argv, "--datasets", "vorb/walker-walk/random-v0,vorb/walker-walk/expert-v0"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    specs = [registry.get(n) for n in registry.names()]
    offline, online_specs = [s for s in specs if s.offline], [s for s in specs if not s.offline]
    assert lines[1] == f"{len(offline) * 2 * 2 + len(online_specs) * 2} cells:"
    online = [line for line in lines if "online" in line.split()]
    assert len(online) == 2 * len(online_specs) and "seed 5" in online[1]


@pytest.mark.parametrize(
    ("values", "expected"),
    [(None, (0, 1)), (["3"], (0, 1, 2)), (["0", "4"], (0, 4)), (["7,"], (7,)), (["1,2"], (1, 2))],
)
def test_seed_lists(values: list[str] | None, expected: tuple[int, ...]) -> None:
    assert run.parse_seeds(values, default_count=2) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--algos", "bc-pixels,nope"], "unknown baseline 'nope'; valid names: sac-curl-online"),
        (["--datasets", "vorb/walker-walk/nope-v0"], "valid: default, all, vorb/walker-walk/"),
        (["--seeds", "1", "x"], "seeds must be integers"),
        (["--seeds", "-1", "2"], "non-negative"),
        (["--seeds", "1", "1"], "seeds repeat"),
        (["--seeds", "0"], "at least 1"),
        (["--profile", "huge"], "invalid choice: 'huge'"),
    ],
)
def test_bad_input_names_the_valid_choices(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run.main(["--plan", *argv])
    assert exit_info.value.code == run.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_full_profile_without_datasets_says_how_to_get_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--profile", "full", "--algos", "bc-pixels", "--results", str(tmp_path / "r")]
    assert run.main(argv) == run.EXIT_USAGE
    error = capsys.readouterr().err
    assert "python -m benchmark.datasets build vorb/walker-walk/random-v0" in error
    assert "download" in error


def test_unwritable_results_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("a file, not a folder")
    argv = ["--profile", "smoke", "--algos", "bc-pixels", "--results", str(tmp_path / "file" / "r")]
    assert run.main(argv) == run.EXIT_USAGE
    assert "cannot write results under" in capsys.readouterr().err


# -- failure isolation: a baseline that diverges at its second update ---------------------------
@dataclasses.dataclass(frozen=True)
class DivergingConfig:
    batch_size: int = 4


class DivergingAgent:
    def __init__(self, config: Any, obs_shape: tuple, action_dim: int, device: Any) -> None:
        self.action_dim, self.updates = action_dim, 0

    def update(self, batch: Any) -> dict[str, float]:
        self.updates += 1
        return {"loss": float("nan") if self.updates >= 2 else 1.0}

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        return np.zeros(self.action_dim, dtype=np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.updates = state["updates"]


@pytest.fixture
def diverging_baseline(monkeypatch: pytest.MonkeyPatch) -> str:
    """Registered for this test only (the registry forbids re-registering; the entry goes)."""
    name = "test-diverging"
    registry.names()  # the built-ins first, so that they keep their order
    spec = BaselineSpec(
        name,
        f"{__name__}:DivergingConfig",
        f"{__name__}:DivergingAgent",
        offline=True,
        summary="diverges at its second update (tests)",
    )
    monkeypatch.setitem(registry._REGISTRY, name, spec)
    return name


@pytest.fixture(autouse=True)
def restore_torch_threads() -> Any:
    """Cells run in-process set torch's thread count (to 1, what a worker gets): put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def in_process(tasks: list[runner.CellTask], workers: int, on_outcome: Any, **_: Any) -> list:
    """The local launcher without worker processes, so that test-only baselines are visible."""
    outcomes = [runner.run_cell(task) for task in tasks]
    for outcome in outcomes:
        on_outcome(outcome)
    return outcomes


def test_a_diverging_cell_fails_alone(
    diverging_baseline: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(runner, "run_local", in_process)
    argv = ["--profile", "smoke", "--results", str(tmp_path / "r"), "--device", "cpu"]
    argv += ["--algos", f"{diverging_baseline},sac-curl-offline"]
    assert run.main(argv) == run.EXIT_FAILED_CELLS
    out = capsys.readouterr().out
    assert "failed" in out and "DivergedError: metric 'loss' is nan (mean over updates 1..2)" in out
    table = load_results(tmp_path / "r")
    assert set(table["algo"]) == {"sac-curl-offline"} and table["update"].tolist() == [2, 4]
    failed = next((tmp_path / "r").rglob("failed.json"))
    assert "DivergedError" in json.loads(failed.read_text())["error"]
    assert not (failed.parent / "done").exists()
    cell = runner.Cell("sac-curl-offline", "vorb/walker-walk/random-v0", 0, "smoke")
    assert CellPaths.of(tmp_path / "r", cell).done.exists()


# -- online resume: checkpoints wait for an episode boundary -----------------------------------
ONLINE_PROFILE = dataclasses.replace(
    profiles.get("smoke"),
    name="smoke-online-resume",
    updates=30,
    eval_interval=10,  # evaluations at 10, 20, 30; episodes of 20 agent steps end at 20, 40
    config_overrides=(("batch_size", 4), ("initial_random_steps", 5), ("replay_capacity", 100)),
)


def online_task(root: Path) -> runner.CellTask:
    cell = runner.Cell("sac-curl-online", "online", 0, ONLINE_PROFILE.name)
    return runner.CellTask(cell, str(root), "cpu", threads=1, dataset_id=None, progress=False)


def test_online_cell_resumes_from_an_episode_boundary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(profiles.PROFILES, ONLINE_PROFILE.name, ONLINE_PROFILE)
    assert runner.run_cell(online_task(tmp_path / "fresh")).status == "done"

    evaluate, calls = runner.evaluate_cell, []

    def crash_at_third(run: Any, env: Any, seconds: float) -> None:
        calls.append(run.trainer.updates)
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        evaluate(run, env, seconds)

    monkeypatch.setattr(runner, "evaluate_cell", crash_at_third)
    crashed = runner.run_cell(online_task(tmp_path / "crashed"))
    assert crashed.status == "failed" and "simulated crash" in str(crashed.error)
    state = torch.load(next((tmp_path / "crashed").rglob("checkpoint.pt")), weights_only=False)
    assert state["trainer"]["agent_steps"] % 20 == 0  # taken at an episode boundary
    assert [row["update"] for row in state["rows"]] == [10]  # the row at 20 came after it

    monkeypatch.setattr(runner, "evaluate_cell", evaluate)
    assert runner.run_cell(online_task(tmp_path / "crashed")).status == "done"
    resumed, fresh = load_results(tmp_path / "crashed"), load_results(tmp_path / "fresh")
    assert fresh["update"].tolist() == [10, 20, 30]
    pd.testing.assert_frame_equal(resumed.drop(columns="seconds"), fresh.drop(columns="seconds"))
    # Training metrics too: the window between the evaluation at 10 and the checkpoint at the
    # episode boundary (update 15) was in the checkpoint, the rest recomputed.
    resumed_metrics, fresh_metrics = (
        load_metrics(tmp_path / name) for name in ("crashed", "fresh")
    )
    assert fresh_metrics["update"].tolist() == [10, 20, 30]
    pd.testing.assert_frame_equal(resumed_metrics, fresh_metrics)


def test_a_cell_logged_off_a_terminal_reports_its_updates_and_pace_between_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """With ``update_line_every_s`` 0 every update gets its line; at the default (minutes) a
    cell of seconds gets none, so its log holds its events alone."""
    monkeypatch.setitem(profiles.PROFILES, ONLINE_PROFILE.name, ONLINE_PROFILE)
    every_update = dataclasses.replace(
        online_task(tmp_path / "a"), log_lines=True, update_line_every_s=0.0
    )
    assert runner.run_cell(every_update).status == "done"
    label = every_update.cell.label
    lines = [line for line in capfd.readouterr().err.splitlines() if f"[cell] {label}: update " in line]
    assert [line.split(": update ", 1)[1].split(" of ")[0] for line in lines] == [
        str(n) for n in range(1, 31)
    ]
    pace = float(lines[-1].split("%), ", 1)[1].split(" s an update")[0])
    assert pace > 0 and lines[-1].endswith("~0 min to go at that pace")
    assert "update 15 of 30 (50%)" in lines[14]

    quiet = dataclasses.replace(online_task(tmp_path / "b"), log_lines=True)
    assert quiet.update_line_every_s == 300.0
    assert runner.run_cell(quiet).status == "done"
    err = capfd.readouterr().err
    assert ": update " not in err and "start at update 0 of 30" in err
