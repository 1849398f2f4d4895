"""The CLI's full-scale features in-process on real smoke-scale cells: ``--set``, the time
budget and exact resume, training metrics, Q diagnostics, bad devices and unreadable checkpoints,
and what ``--plan`` says a run costs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from baselines.cql_curl import CQLCURLConfig
from baselines.sac_curl import SACCURLConfig
from benchmark import run
from benchmark.harness import profiles, runner
from benchmark.harness.overrides import parse_overrides
from benchmark.harness.results import Cell, CellPaths, load_results, read_metrics

RANDOM = "vorb/walker-walk/random-v0"


@pytest.fixture(autouse=True)
def _threads(restore_torch_threads: None) -> None:
    """Every test here restores torch's thread count (tests/conftest.py)."""


def smoke_argv(root: Path, *extra: str) -> list[str]:
    return ["--profile", "smoke", "--results", str(root), "--device", "cpu", *extra]


# -- CQL-CURL as the original work ran it ----------------------------------------------------------
def test_cql_curl_defaults_are_the_original_codes() -> None:
    config = CQLCURLConfig()
    assert (config.batch_size, config.min_q_weight, config.cql_temperature) == (128, 10.0, 1.0)
    assert config.num_sampled_actions == 8 and not config.with_lagrange
    assert (config.actor_lr, config.critic_lr, config.curl_lr) == (1e-4, 3e-4, 1e-3)
    sac = SACCURLConfig()  # the CURL paper's values stay SAC-CURL's
    assert (sac.actor_lr, sac.critic_lr, sac.batch_size) == (1e-3, 1e-3, 128)


def test_full_profile_follows_the_original_protocol() -> None:
    full = run.profiles.get("full")
    assert (full.updates, full.eval_interval, full.eval_episodes) == (1_000_000, 5_000, 10)
    assert full.episode_time_limit_s == 25.0  # 500 agent steps


# -- --set ---------------------------------------------------------------------------------------
def test_set_parses_by_the_fields_type() -> None:
    items = ["updates=200_000", "actor_lr=1e-3", "with_lagrange=yes", "dataset_transitions=none"]
    overrides = parse_overrides(items, [CQLCURLConfig])
    assert dict(overrides.profile) == {"updates": 200_000, "dataset_transitions": None}
    assert dict(overrides.config) == {"actor_lr": 1e-3, "with_lagrange": True}
    assert overrides.apply_config(SACCURLConfig()).actor_lr == 1e-3  # fields it has only


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("bogus=1", "unknown field 'bogus'; valid fields: profile: dataset_transitions"),
        ("updates=1.5", "--set updates='1.5': expected int"),
        ("with_lagrange=maybe", "expected bool"),
        ("actor_lr", "--set expects FIELD=VALUE, got 'actor_lr'"),
        ("min_q_weight=3", "unknown field 'min_q_weight'"),  # bc's config has no such field
    ],
)
def test_bad_set_items_are_usage_errors(
    item: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    algos = "bc-pixels" if "min_q_weight" in item else "cql-curl"
    with pytest.raises(SystemExit) as exit_info:
        run.main(["--plan", "--algos", algos, "--set", item])
    assert exit_info.value.code == run.EXIT_USAGE
    error = capsys.readouterr().err
    assert message in error
    if "unknown" in item or "bogus" in item:
        assert "batch_size" in error  # the valid config fields are listed


def test_set_is_applied_recorded_and_part_of_the_cells_identity(
    tmp_path: Path, in_process: None, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = smoke_argv(tmp_path / "r", "--algos", "bc-pixels,sac-curl-offline")
    argv += ["--set", "updates=2", "--set", "actor_lr=0.002"]
    assert run.main(argv) == 0
    table = load_results(tmp_path / "r")
    assert table.groupby("algo")["update"].max().tolist() == [2, 2]
    sac = CellPaths.of(tmp_path / "r", Cell("sac-curl-offline", RANDOM, 0, "smoke"))
    setup = json.loads(sac.meta.read_text())["setup"]
    assert setup["config"]["actor_lr"] == 0.002 and setup["profile"]["updates"] == 2
    assert setup["overrides"] == {"config": {"actor_lr": 0.002}, "profile": {"updates": 2}}
    # Q diagnostics: finite for a critic, NaN for BC; the discounted return for both.
    sac_rows = table[table["algo"] == "sac-curl-offline"]
    bc_rows = table[table["algo"] == "bc-pixels"]
    assert sac_rows["q_estimate"].map(math.isfinite).all()
    assert bc_rows["q_estimate"].isna().all()
    assert table["discounted_return"].map(math.isfinite).all()
    metrics = read_metrics(sac.metrics)
    assert metrics["update"].tolist() == [2] and {"critic_loss", "curl_loss"} <= set(metrics)
    capsys.readouterr()

    changed = [*argv[:-1], "actor_lr=0.003"]
    assert run.main(changed) == run.EXIT_FAILED_CELLS
    assert "another configuration" in capsys.readouterr().out


# -- bad devices and unreadable checkpoints -------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_usage_error_naming_what_is_available(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--profile", "smoke", "--algos", "bc-pixels", "--results", str(tmp_path / "r")]
    with pytest.raises(SystemExit) as exit_info:
        run.main([*argv, "--device", "cuda"])
    assert exit_info.value.code == run.EXIT_USAGE
    assert "CUDA is not available here" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # no cell started
    with pytest.raises(SystemExit):
        run.main([*argv, "--device", "gpu0"])
    assert "available here: cpu" in capsys.readouterr().err


# -- the time budget --------------------------------------------------------------------------------
class SteppingClock:
    """A wall clock that advances one second per reading: the budget runs out after a known
    number of the runner's checks (one per update), without real waiting."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_a_budgeted_run_then_a_resumed_run_equal_an_uninterrupted_run(
    tmp_path: Path,
    in_process: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    extra = ("--algos", "sac-curl-offline", "--set", "updates=6")
    assert run.main(smoke_argv(tmp_path / "whole", *extra)) == 0

    clock = SteppingClock()
    monkeypatch.setattr(runner, "now", clock)
    monkeypatch.setattr(run, "budget_reserve", lambda budget: 0.0)
    budgeted = smoke_argv(tmp_path / "split", *extra)
    assert run.main([*budgeted, "--time-budget", "4s"]) == run.EXIT_INCOMPLETE
    captured = capsys.readouterr()
    assert "paused" in captured.out and "will resume" in captured.err
    cell = CellPaths.of(tmp_path / "split", Cell("sac-curl-offline", RANDOM, 0, "smoke"))
    state = torch.load(cell.checkpoint, weights_only=False)
    paused_at = state["trainer"]["updates"]
    assert 0 < paused_at < 6 and not cell.done.exists()
    # --plan on the folder says where the cell stands and what is left of the run.
    interval = profiles.PROFILES["smoke"].eval_interval_for("sac-curl-offline")
    left = f"left in {tmp_path / 'split'}: 1 cells, {6 - paused_at:,} updates, "
    left += f"{math.ceil(6 / interval) - paused_at // interval} evaluations"
    out = plan_output([*budgeted, "--plan"], capsys)
    assert f"seed 0  paused at update {paused_at:,} (the same command resumes it)" in out
    assert left in out and "cost: 1 cells, 6 updates" in out

    monkeypatch.undo()
    assert run.main(budgeted) == 0
    out = plan_output([*budgeted, "--plan"], capsys)
    assert "seed 0  finished" in out and "1 cells" not in out.split("left in")[1]
    whole, split = load_results(tmp_path / "whole"), load_results(tmp_path / "split")
    pd.testing.assert_frame_equal(split.drop(columns="seconds"), whole.drop(columns="seconds"))
    whole_cell = CellPaths.of(tmp_path / "whole", Cell("sac-curl-offline", RANDOM, 0, "smoke"))
    pd.testing.assert_frame_equal(read_metrics(cell.metrics), read_metrics(whole_cell.metrics))


def test_an_unreadable_checkpoint_fails_its_cell_naming_the_file(
    tmp_path: Path,
    in_process: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = SteppingClock()
    monkeypatch.setattr(runner, "now", clock)
    monkeypatch.setattr(run, "budget_reserve", lambda budget: 0.0)
    argv = smoke_argv(tmp_path / "r", "--algos", "bc-pixels")
    assert run.main([*argv, "--time-budget", "3"]) == run.EXIT_INCOMPLETE
    cell = CellPaths.of(tmp_path / "r", Cell("bc-pixels", RANDOM, 0, "smoke"))
    cell.checkpoint.write_bytes(b"not a checkpoint")
    monkeypatch.undo()
    assert run.main(argv) == run.EXIT_FAILED_CELLS
    error = json.loads(cell.failed.read_text())["error"]
    assert f"cannot resume from {cell.checkpoint}" in error and "delete its folder" in error
    out = plan_output([*argv, "--plan"], capsys)
    assert f"seed 0  failed: {error.splitlines()[0]} (a rerun retries it)" in out


def plan_output(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert run.main(argv) == 0
    return capsys.readouterr().out


# -- what a run costs -----------------------------------------------------------------------------
def test_plan_counts_updates_and_evaluations(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--plan", "--profile", "full", "--algos", "cql-curl", "--seeds", "3"]
    assert run.main([*argv, "--datasets", RANDOM, "--set", "updates=100000"]) == 0
    out = capsys.readouterr().out
    assert "cost: 3 cells, 300,000 updates, 60 evaluations (10 episode(s) each)" in out
    assert "300,000 rendered agent steps" in out and "--probe" in out


def test_plan_probe_estimates_wall_clock(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--plan", "--probe", "--profile", "smoke", "--algos", "bc-pixels", "--device", "cpu"]
    assert run.main(argv) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("estimate"))
    assert "estimate on cpu with 1 worker(s):" in line and "seconds" in line


# -- the online ring through the CLI ----------------------------------------------------------------
def test_an_online_cell_runs_past_its_replay_capacity(tmp_path: Path, in_process: None) -> None:
    # smoke: 10 random warm-up steps; 20 updates = 30 agent steps into a 12-transition ring.
    extra = ("--algos", "sac-curl-online", "--set", "replay_capacity=12", "--set", "updates=20")
    extra += ("--set", "eval_interval=10")
    assert run.main(smoke_argv(tmp_path / "r", *extra)) == 0
    cell = CellPaths.of(tmp_path / "r", Cell("sac-curl-online", "online", 0, "smoke"))
    assert load_results(tmp_path / "r")["update"].tolist() == [10, 20]
    assert json.loads(cell.meta.read_text())["setup"]["config"]["replay_capacity"] == 12
    assert any((cell.folder / "replay").iterdir())  # incremental chunks beside the checkpoint
