"""Report statistics against hand-computed values, the leaderboard, and the figures."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from benchmark.harness.results import (
    COLUMNS,
    Cell,
    CellPaths,
    EvalRow,
    metrics_frame,
    write_json,
    write_rows,
)
from benchmark.report import leaderboard as report
from benchmark.report import plots, stats

RANDOM, EXPERT = "vorb/walker-walk/random-v0", "vorb/walker-walk/expert-v0"


def test_iqm_of_a_known_array() -> None:
    # 0..7: the middle half is 2, 3, 4, 5 -> 3.5 (rliable trims 25% on each side).
    interval = report.iqm_intervals({"a": np.arange(8.0).reshape(4, 2)})["a"]
    assert interval.point == pytest.approx(3.5)
    assert interval.low <= 3.5 <= interval.high
    constant = report.iqm_intervals({"c": np.full((3, 2), 7.0)})["c"]
    assert (constant.point, constant.low, constant.high) == pytest.approx((7.0, 7.0, 7.0))


def test_iqm_intervals_are_seeded() -> None:
    scores = {"a": np.random.default_rng(1).normal(size=(5, 3))}
    assert report.iqm_intervals(scores) == report.iqm_intervals(scores)


def test_mean_std_over_seeds() -> None:
    assert report.mean_std(np.array([[1.0], [3.0]])) == pytest.approx((2.0, 1.0))
    assert report.mean_std(np.array([[4.0]])) == pytest.approx((4.0, 0.0))


def test_probability_of_improvement_on_constructed_cases() -> None:
    # Pairs (x, y): 3>2 three times, 4>2 three times, 1<2 three times -> 6/9.
    x, y = np.array([[3.0], [4.0], [1.0]]), np.array([[2.0], [2.0], [2.0]])
    assert report.probability_of_improvement(x, y).point == pytest.approx(2 / 3)
    assert report.probability_of_improvement(y + 5, y).point == pytest.approx(1.0)
    assert report.probability_of_improvement(y, y).point == pytest.approx(0.5)  # ties count half


def synthetic_table() -> pd.DataFrame:
    """Two offline baselines on two datasets and an online one, 3 seeds, 3 evaluations each."""
    rows = []
    base = {"cql-curl": 60.0, "sac-curl-offline": 10.0, "sac-curl-online": 90.0}
    for algo, level in base.items():
        datasets = ["online"] if algo == "sac-curl-online" else [RANDOM, EXPERT]
        for dataset in datasets:
            for seed in range(3):
                for step, fraction in ((100, 0.5), (200, 1.0), (300, 0.9)):
                    score = level * fraction + seed
                    truth = score * 1.8  # offline SAC-CURL overestimates, CQL-CURL does not
                    estimate = truth * (3.0 if algo == "sac-curl-offline" else 0.8)
                    key = (algo, dataset, seed, "demo", step, step * 2)
                    rows.append((*key, score * 10, 1.0, score, 1.0, estimate, truth, "pixels"))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def test_final_and_best_per_run() -> None:
    runs = report.per_run_scores(synthetic_table())
    one = runs[(runs["algo"] == "cql-curl") & (runs["dataset"] == EXPERT) & (runs["seed"] == 2)]
    assert one["final"].item() == pytest.approx(60 * 0.9 + 2)  # last evaluation, not the best
    assert one["best"].item() == pytest.approx(60 + 2)


def test_leaderboard_rows_and_aggregate() -> None:
    board = report.leaderboard(report.per_run_scores(synthetic_table()))
    assert board["algo"].tolist()[:3] == ["sac-curl-online", "sac-curl-online", "sac-curl-offline"]
    cql = board[(board["algo"] == "cql-curl") & (board["dataset"] == RANDOM)].iloc[0]
    assert cql["final_mean"] == pytest.approx(54 + 1)  # seeds add 0, 1, 2
    assert cql["final_std"] == pytest.approx(np.std([0, 1, 2]))
    aggregate = board[(board["algo"] == "cql-curl") & (board["dataset"] == "aggregate")].iloc[0]
    assert aggregate["runs"] == 3
    assert aggregate["best_iqm"] == pytest.approx(61.0)  # IQM of 60,61,62 twice -> 61
    # Datasets from the worst data to the best (D4RL's order), not alphabetically.
    cql_rows = board.loc[board["algo"] == "cql-curl", "dataset"].tolist()
    assert cql_rows == [RANDOM, EXPERT, "aggregate"]


def test_datasets_are_ordered_by_quality_then_by_name() -> None:
    names = [f"vorb/walker-walk/{q}-v0" for q in ("expert", "medium", "random", "medium-replay")]
    assert stats.dataset_order([*names, "online", "vorb/walker-walk/medium-expert-v0"]) == [
        "vorb/walker-walk/random-v0",
        "vorb/walker-walk/medium-replay-v0",
        "vorb/walker-walk/medium-v0",
        "vorb/walker-walk/medium-expert-v0",
        "vorb/walker-walk/expert-v0",
        "online",
    ]


def test_improvement_of_cql_over_offline_sac() -> None:
    result = report.improvement(report.per_run_scores(synthetic_table()))
    assert result is not None and result["datasets"] == [RANDOM, EXPERT]
    assert result["interval"].point == pytest.approx(1.0)


def test_figures_render_non_trivial_images(tmp_path: Path) -> None:
    table = synthetic_table()
    names = plots.all_figures(table, report.per_run_scores(table), tmp_path)
    pngs = [tmp_path / name for name in names if name.endswith(".png")]
    assert {p.stem for p in pngs} == {
        "learning_curves_update",
        "aggregate_iqm",
        "performance_profile",
        "q_estimate_vs_return",
    }
    assert all((tmp_path / name).stat().st_size > 1_000 for name in names)  # PDFs too
    for png in pngs:
        image = matplotlib.image.imread(png)
        assert image.shape[0] > 200 and image.shape[1] > 200
        assert image[..., :3].std() > 0.05  # not a blank canvas


def write_synthetic_results(root: Path, table: pd.DataFrame) -> None:
    for (algo, dataset, seed), rows in table.groupby(["algo", "dataset", "seed"]):
        paths = CellPaths.of(root, Cell(algo, dataset, seed, "demo"))
        write_rows(paths.evals, [EvalRow(**r) for r in rows.to_dict("records")])
        references = {"min_score": 0.0, "max_score": 1000.0, "source": "dataset:test"}
        evaluation = {"episodes": 2, "time_limit_s": 5.0, "seeds": [10000, 10001]}
        setup = {"references": references, "evaluation": evaluation}
        write_json(paths.meta, {"setup": setup, "git": {"commit": "abc"}})


def test_report_command_writes_leaderboard_and_figures(tmp_path: Path) -> None:
    write_synthetic_results(tmp_path / "runs", synthetic_table())
    assert report.main(["--results", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "profile `demo`" in text and "demonstration, not results" in text
    assert "P(cql-curl > sac-curl-offline)" in text and "dataset:test" in text
    board = pd.read_csv(tmp_path / "out" / "leaderboard.csv")
    assert set(board["dataset"]) == {RANDOM, EXPERT, "online", "aggregate"}
    assert (tmp_path / "out" / "figures" / "performance_profile.pdf").is_file()
    assert report.main(["--results", str(tmp_path / "runs"), "--profile", "full"]) == 2


def test_leaderboard_reports_final_overestimation() -> None:
    board = report.leaderboard(report.per_run_scores(synthetic_table()))
    gap = board.set_index(["algo", "dataset"])["final_q_gap"]
    assert gap["sac-curl-offline", EXPERT] > 0 > gap["cql-curl", EXPERT]  # over vs conservative
    assert gap["sac-curl-offline", "aggregate"] == pytest.approx(
        gap[["sac-curl-offline"]].drop("aggregate", level="dataset").mean()
    )


def test_training_metrics_figure_has_a_panel_per_metric(tmp_path: Path) -> None:
    rows = [
        {"algo": algo, "dataset": EXPERT, "seed": seed, "profile": "demo", "update": update}
        | ({"critic_loss": 1.0 / update + seed, "q1": update / 10} if algo != "bc-pixels" else {})
        | ({"bc_loss": 2.0 / update} if algo == "bc-pixels" else {})
        for algo in ("cql-curl", "bc-pixels")
        for seed in range(2)
        for update in (100, 200, 300)
    ]
    names = plots.training_metrics(metrics_frame(rows), tmp_path)
    assert names == ["training_metrics.png", "training_metrics.pdf"]
    image = matplotlib.image.imread(tmp_path / "training_metrics.png")
    assert image.shape[0] > image.shape[1]  # three metrics stacked over one dataset column
    assert plots.training_metrics(metrics_frame([]), tmp_path) == []


def test_the_state_track_compares_cql_with_offline_sac_and_names_their_budgets() -> None:
    table = synthetic_table()
    names = {"cql-curl": "cql-state", "sac-curl-offline": "sac-state-offline"}
    table["algo"] = table["algo"].replace(names)
    table.loc[table["algo"] == "cql-state", "update"] //= 10  # a budget-limited CQL
    runs = report.per_run_scores(table)
    assert report.improvement_pair(runs) == ("cql-state", "sac-state-offline")
    result = report.improvement(runs)
    assert result is not None and (result["x"], result["y"]) == ("cql-state", "sac-state-offline")
    cql_updates, sac_updates = (
        result["updates"][name] for name in ("cql-state", "sac-state-offline")
    )
    assert cql_updates == [sac_updates[0] // 10]
    board = report.leaderboard(runs)
    assert set(board.loc[board["algo"] == "cql-state", "updates"]) == {str(cql_updates[0])}


def test_the_leaderboard_names_overrides_the_cells_recorded(tmp_path: Path) -> None:
    """A cell run with ``--set updates=...`` says so in the protocol, beside the profile's line."""
    table = synthetic_table()
    write_synthetic_results(tmp_path / "runs", table)
    for seed in sorted(set(table["seed"])):
        paths = CellPaths.of(tmp_path / "runs", Cell("cql-curl", EXPERT, seed, "demo"))
        meta = json.loads(paths.meta.read_text())
        meta["cell"] = {"algo": "cql-curl", "dataset": EXPERT, "profile": "demo", "seed": seed}
        meta["setup"]["overrides"] = {"profile": {"updates": 750}, "config": {"hidden_dim": 64}}
        write_json(paths.meta, meta)
    assert report.main(["--results", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "leaderboard.md").read_text()
    runs = len(set(table["seed"]))
    expected = f"Overrides recorded by `cql-curl` on `{EXPERT}` ({runs} run(s)): hidden_dim=64, updates=750."
    assert expected in text
    assert text.count("Overrides recorded") == 1  # the other baselines ran as the profile says
    assert "Profile `demo` as registered (cells with `--set` overrides are listed next)" in text
    plain = tmp_path / "plain"
    write_synthetic_results(plain / "runs", table)
    assert report.main(["--results", str(plain / "runs"), "--out", str(plain / "out")]) == 0
    assert "as registered" not in (plain / "out" / "leaderboard.md").read_text()


def test_learning_curves_zoom_on_a_baseline_stopped_early(tmp_path: Path) -> None:
    """A budget-limited baseline (here CQL at a tenth of the others' updates) gets an inset over
    its updates in its dataset's panel; panels where every baseline ran as long get none."""
    table = synthetic_table()
    early = (table["algo"] == "cql-curl") & (table["dataset"] == EXPERT)
    table = pd.concat([table[~early], table[early].assign(update=table[early]["update"] // 10)])
    frame = plots.curves_frame(table)
    style = {"hue_order": report.algo_order(frame), "style": "algo"}
    figure, (expert_axis, random_axis) = plots.plt.subplots(1, 2)
    for axis, dataset in ((expert_axis, EXPERT), (random_axis, RANDOM)):
        plots._zoom_on_short_runs(frame[frame["dataset"] == dataset], "update", axis, style)
    (inset,) = expert_axis.child_axes
    assert inset.get_xlim() == (0.0, 30.0) and inset.get_title() == "first 30 updates"
    assert random_axis.child_axes == []
    plots.plt.close(figure)
    assert plots.learning_curves(table, tmp_path) == [
        "learning_curves_update.png",
        "learning_curves_update.pdf",
    ]
