"""Report statistics against hand-computed values, the leaderboard, and the figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from benchmark.harness import profiles
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


def test_mean_std_over_seeds_is_the_sample_std() -> None:
    assert report.mean_std(np.array([[1.0], [3.0]])) == pytest.approx((2.0, np.sqrt(2.0)))
    mean, std = report.mean_std(np.array([[4.0]]))
    assert mean == 4.0 and np.isnan(std)  # one run has no spread to estimate
    # Over datasets, each seed's mean is one run: the spread is over seeds, not datasets.
    two_datasets = np.array([[0.0, 100.0], [2.0, 102.0]])
    assert report.mean_std(two_datasets) == pytest.approx((51.0, np.sqrt(2.0)))


def test_student_t_interval_on_the_mean() -> None:
    # n = 3, mean 2, sample std 1: half-width t(0.975, 2) / sqrt(3) = 4.302653 / 1.732051.
    interval = stats.t_interval(np.array([[1.0], [2.0], [3.0]]))
    assert (interval.point, interval.kind) == (2.0, "t")
    assert interval.high - 2.0 == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
    assert interval.low == pytest.approx(4.0 - interval.high)
    assert np.isnan(stats.t_interval(np.array([[5.0]])).low)


def test_a_bootstrap_interval_over_three_seeds_is_their_range() -> None:
    three = np.array([[1.0], [5.0], [2.0]])
    interval = report.iqm_intervals({"a": three})["a"]
    assert (interval.low, interval.high, interval.kind) == (1.0, 5.0, "range")
    assert str(interval) == "2.7, range [1.0, 5.0]"
    five = np.array([[1.0], [5.0], [2.0], [3.0], [4.0]])
    wider = report.iqm_intervals({"b": five})["b"]
    assert wider.kind == "bootstrap" and 1.0 < wider.low < wider.high < 5.0


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
    # Online SAC ran no dataset of the offline baselines: its row, but no aggregate row.
    assert board["algo"].tolist()[:2] == ["sac-curl-online", "sac-curl-offline"]
    assert set(board.loc[board["algo"] == "sac-curl-online", "dataset"]) == {"online"}
    cql = board[(board["algo"] == "cql-curl") & (board["dataset"] == RANDOM)].iloc[0]
    assert cql["final_mean"] == pytest.approx(54 + 1)  # seeds add 0, 1, 2
    assert cql["final_std"] == pytest.approx(np.std([0, 1, 2], ddof=1))  # the sample std
    assert cql["final_iqm_interval"] == "range"  # 3 seeds: the bootstrap gives their range
    assert cql["final_return_mean"] == pytest.approx(10 * cql["final_mean"])  # score x 10 here
    assert cql["final_vd4rl_mean"] == pytest.approx(cql["final_return_mean"] / 10)
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


def test_the_state_track_does_not_compare_cql_at_another_budget() -> None:
    """CQL at a tenth of offline SAC's updates: no P(improvement) and no aggregate row for it,
    each refusal saying why (issue 27: CQL's 60.0 read as equal to TD3+BC's 59.4)."""
    table = synthetic_table()
    names = {"cql-curl": "cql-state", "sac-curl-offline": "sac-state-offline"}
    table["algo"] = table["algo"].replace(names)
    table.loc[table["algo"] == "cql-state", "update"] //= 10  # a budget-limited CQL
    runs = report.per_run_scores(table)
    assert report.improvement_pair(runs) == ("cql-state", "sac-state-offline")
    assert report.improvement(runs) is None
    reason = report.not_comparable(runs, ("cql-state", "sac-state-offline"))
    assert reason is not None and "at 30 updates" in reason and "at 300 updates" in reason
    board = report.leaderboard(runs)
    assert set(board.loc[board["algo"] == "cql-state", "updates"]) == {"30"}
    assert "aggregate" not in set(board.loc[board["algo"] == "cql-state", "dataset"])
    assert "aggregate" in set(board.loc[board["algo"] == "sac-state-offline", "dataset"])
    pair = ("cql-state", "sac-state-offline")
    text = report.markdown(board, profiles.get("demo"), [], None, [], pair, runs)
    assert "- `cql-state`: ran 2 dataset(s) (random-v0, expert-v0) at 30 updates." in text
    assert f"Not computed: {reason}." in text


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


# -- the committed reference's real cells --------------------------------------------------------
REFERENCE_ARCHIVE = Path(__file__).resolve().parents[1] / "results/reference-state/results.tar.gz"
STATE_EXPERT = "vorb/walker-walk/expert-v0"


@pytest.fixture(scope="module")
def reference_cells(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The finished cells of results/reference-state, unpacked as a results folder."""
    root = tmp_path_factory.mktemp("reference-state")
    with tarfile.open(REFERENCE_ARCHIVE) as archive:
        archive.extractall(root, filter="data")
    return root


@pytest.fixture(scope="module")
def reference_report(reference_cells: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference-report")
    report.write_report(reference_cells, out)
    return out


def final_rows(root: Path) -> pd.DataFrame:
    """Each cell's last evaluation, read straight from its evals.csv."""
    tables = [pd.read_csv(path) for path in sorted(root.glob("runs/*/*/*/seed-*/evals.csv"))]
    return pd.concat([t.sort_values("update").tail(1) for t in tables], ignore_index=True)


def test_divergence_on_the_reference_cells(reference_cells: Path) -> None:
    """Offline SAC on expert (temperature to 3e7, critic loss 6e17) diverged; BC and online SAC
    did not; TD3+BC (the actor on the first critic) did in one run each on random (batch Q 2,584)
    and medium-replay (Q(s0, pi(s0)) 381), against a bound of 200, and nowhere else."""
    from benchmark.harness.results import METRICS_KEY_DTYPES, select_cells, sort_metrics

    selection = select_cells(reference_cells)
    metrics = sort_metrics(selection.table("metrics.csv", METRICS_KEY_DTYPES, profile="state"))
    meta = list(selection.meta.values())
    runs = report.with_divergence(
        report.per_run_scores(selection.evals), selection.evals, metrics, meta
    )
    assert len(runs) == len(list(reference_cells.glob("runs/*/*/*/seed-*/done")))
    by_algo = runs.groupby("algo")["diverged"]
    td3bc = runs[runs["algo"] == "td3bc-state"]
    assert set(td3bc.loc[td3bc["diverged"], "dataset"]) == {
        "vorb/walker-walk/random-v0",
        "vorb/walker-walk/medium-replay-v0",
    }
    assert td3bc["diverged"].sum() == 2 and len(td3bc) == 25  # 5 seeds on each dataset
    assert not by_algo.get_group("bc-state").any()
    assert not by_algo.get_group("sac-state-online").any()
    sac_expert = runs[(runs["algo"] == "sac-state-offline") & (runs["dataset"] == STATE_EXPERT)]
    assert sac_expert["diverged"].all() and (sac_expert["divergence_ratio"] > 1e6).all()
    sac_random = runs[
        (runs["algo"] == "sac-state-offline") & runs["dataset"].str.contains("random")
    ]
    assert not sac_random["diverged"].any()  # its Q stays below 200


def test_value_bounds_follow_reward_range_discount_and_entropy() -> None:
    from benchmark.report import divergence

    assert tuple(map(float, divergence.value_bounds(0.99))) == pytest.approx((0.0, 200.0))
    worst = (2.0 + 0.5 * 6 * np.log(2.0)) / 0.01  # entropy not logged: uniform's 6 log 2
    low, high = divergence.value_bounds(0.99, [0.5], [np.nan])
    assert (low[0], high[0]) == (-np.inf, pytest.approx(worst))
    low, high = divergence.value_bounds(0.99, [3e7], [-6.0])  # offline SAC on expert
    assert high[0] == pytest.approx(200.0) and low[0] == pytest.approx(-6.0 * 3e7 / 0.01)
    assert divergence.loss_bound(np.array([0.0]), np.array([200.0]))[0] == 2 * 400.0**2


def test_the_report_on_the_reference_cells(reference_cells: Path, reference_report: Path) -> None:
    board = pd.read_csv(reference_report / "leaderboard.csv")
    text = (reference_report / "leaderboard.md").read_text()
    assert "sample std over seeds" in text and "Student-t interval" in text
    finals = final_rows(reference_cells)
    row = board[(board["algo"] == "td3bc-state") & (board["dataset"] == STATE_EXPERT)].iloc[0]
    mine = finals[(finals["algo"] == "td3bc-state") & (finals["dataset"] == STATE_EXPERT)]
    scores = mine["normalized_score"].to_numpy()
    assert row["final_std"] == pytest.approx(np.std(scores, ddof=1))
    n = len(scores)
    t_975 = {3: 4.302653, 5: 2.776445}[n]  # Student-t quantiles at 2 and 4 degrees of freedom
    half = t_975 * np.std(scores, ddof=1) / np.sqrt(n)
    assert row["final_t_high"] == pytest.approx(scores.mean() + half, rel=1e-6)
    # The bootstrap interval is labelled "range" exactly when it is the seeds' lowest and
    # highest, as it always is at 3 seeds.
    bounds = (row["final_iqm_low"], row["final_iqm_high"])
    is_range = np.allclose(bounds, (scores.min(), scores.max()), rtol=0, atol=1e-9)
    assert row["final_iqm_interval"] == ("range" if is_range else "bootstrap")
    assert is_range or n > 3
    assert row["final_return_mean"] == pytest.approx(mine["return_mean"].mean())
    assert row["final_vd4rl_mean"] == pytest.approx(mine["return_mean"].mean() / 10)
    # No mixed aggregate: CQL (expert, 7,500 updates) and online SAC stand apart.
    aggregated = set(board.loc[board["dataset"] == "aggregate", "algo"])
    assert aggregated == {"bc-state", "td3bc-state", "sac-state-offline"}
    assert "- `cql-state`: ran 1 dataset(s) (expert-v0) at 7,500 updates." in text
    assert "Not computed: cql-state ran 1 dataset(s) (expert-v0) at 7,500 updates" in text
    # Divergence shown as such, its Q left out of the means.
    sac = board[(board["algo"] == "sac-state-offline") & (board["dataset"] == STATE_EXPERT)]
    assert np.isnan(sac["final_q_gap"].item()) and sac["diverged_runs"].item() == 3
    assert f"| sac-state-offline | state | {STATE_EXPERT} | 3 |" in text
    line = next(
        t
        for t in text.splitlines()
        if t.startswith(f"| sac-state-offline | state | {STATE_EXPERT}")
    )
    assert line.endswith("| diverged (3/3) |")
    # An aggregate with a diverged run has no Q-gap mean; a dataset without one has its mean.
    td3bc = board[(board["algo"] == "td3bc-state") & (board["dataset"] == "aggregate")]
    assert td3bc["diverged_runs"].item() == 2 and np.isnan(td3bc["final_q_gap"].item())
    td3bc = board[(board["algo"] == "td3bc-state") & (board["dataset"] == STATE_EXPERT)]
    assert td3bc["diverged_runs"].item() == 0 and td3bc["final_q_gap"].item() < 0


def test_every_evaluation_table_on_the_reference_cells(
    reference_cells: Path, reference_report: Path
) -> None:
    """``evaluations.csv`` recomputed from the cells' files: means and sample stds over seeds at
    one evaluation, training metrics of its window, and a diverged critic's Q left out from the
    update it first left the value range."""
    curves = pd.read_csv(reference_report / "evaluations.csv")
    cells = sorted(reference_cells.glob("runs/state/td3bc-state/vorb--walker-walk--expert-v0/seed-*"))
    evals = pd.concat([pd.read_csv(c / "evals.csv") for c in cells])
    metrics = pd.concat([pd.read_csv(c / "metrics.csv") for c in cells])
    at = evals[evals["update"] == 50_000]
    row = curves[
        (curves["algo"] == "td3bc-state")
        & (curves["dataset"] == STATE_EXPERT)
        & (curves["update"] == 50_000)
    ].iloc[0]
    assert row["runs"] == len(at) == 5 and row["diverged"] == 0
    assert row["return"] == pytest.approx(at["return_mean"].mean())
    assert row["return std over runs"] == pytest.approx(at["return_mean"].std(ddof=1))
    assert row["Q - return"] == pytest.approx((at["q_estimate"] - at["discounted_return"]).mean())
    window = metrics[metrics["update"] == 50_000]
    assert row["critic_loss"] == pytest.approx(window["critic_loss"].mean())
    # Offline SAC on expert: in range at 5,000 updates, every run out of range by 10,000.
    sac = curves[(curves["algo"] == "sac-state-offline") & (curves["dataset"] == STATE_EXPERT)]
    first, later = sac[sac["update"] == 5_000].iloc[0], sac[sac["update"] == 10_000].iloc[0]
    assert first["diverged"] == 0 and 0 < first["Q(s0, pi(s0))"] < 200
    assert later["diverged"] == 3 and np.isnan(later["Q(s0, pi(s0))"]) and np.isnan(later["q1"])
    assert later["alpha"] > 0 and not np.isnan(later["normalised"])  # its scores stand
    text = (reference_report / "evaluations.md").read_text()
    assert f"## sac-state-offline on {STATE_EXPERT}" in text and "| 10,000 | 3 | 3 |" in text


def test_improvement_between_the_aggregated_baselines(
    reference_cells: Path, reference_report: Path
) -> None:
    """CQL ran one dataset at its own budget, so the anchor pair (CQL against offline SAC) is not
    compared; every pair of the aggregated baselines is, over the seeds both ran. The point
    estimate is recomputed here from the cells' final evaluations: per dataset the share of
    (x, y) run pairs where x scores higher (ties count half), averaged over the datasets."""
    text = (reference_report / "leaderboard.md").read_text()
    finals = final_rows(reference_cells)

    def probability(x: str, y: str) -> tuple[float, int]:
        seeds = set(finals.loc[finals["algo"] == x, "seed"]) & set(
            finals.loc[finals["algo"] == y, "seed"]
        )
        shared = finals[finals["seed"].isin(seeds)]
        per_dataset = []
        for _, rows in shared.groupby("dataset"):
            xs = rows.loc[rows["algo"] == x, "normalized_score"].to_numpy()[:, None]
            ys = rows.loc[rows["algo"] == y, "normalized_score"].to_numpy()[None, :]
            if xs.size and ys.size:
                per_dataset.append(((xs > ys) + 0.5 * (xs == ys)).mean())
        assert len(per_dataset) == 5  # the five datasets, the same for both
        return float(np.mean(per_dataset)), len(seeds)

    lines = [line for line in text.splitlines() if line.startswith("- P(")]
    for x, y in (("sac-state-offline", "bc-state"), ("bc-state", "td3bc-state")):
        point, runs = probability(x, y)
        line = next(line for line in lines if line.startswith(f"- P({x} > {y})"))
        assert f"= {point:.2f} [" in line, (line, point)
        assert f"; {runs} runs (shared seeds) on random-v0, medium-replay-v0," in line
    assert not any("cql-state" in line or "sac-state-online" in line for line in lines)


def test_a_folder_without_results_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert report.main(["--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert f"{tmp_path} holds no results: no runs/ folder" in error and "*.tar.gz" in error


def test_pixel_state_gap_at_matched_updates_from_real_runs(tmp_path: Path) -> None:
    """A real smoke run of pixel BC (4 updates) against a real state BC run of 6 updates, each
    evaluated every 2: the gap sets the pixel runs' final update (4) against the state runs'
    evaluation at update 4, not at their end (6)."""
    pixels, states = tmp_path / "pixels", tmp_path / "states"
    common = [sys.executable, "-m", "benchmark.run", "--profile", "smoke", "--workers", "1"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    for folder, algo, extra in (
        (pixels, "bc-pixels", []),
        (states, "bc-state", ["--set", "updates=6"]),
    ):
        command = [*common, "--algos", algo, "--seeds", "1", "--results", str(folder), *extra]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
    out = tmp_path / "report"
    command = [sys.executable, "-m", "benchmark.report", "--results", str(pixels),
               "--state-reference", str(states), "--out", str(out)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    gaps = pd.read_csv(out / "pixel_state_gap_matched.csv")
    (row,) = gaps.to_dict("records")
    assert (row["family"], row["updates"], row["pixel_runs"], row["state_runs"]) == ("bc", 4, 1, 1)
    state_evals = pd.concat(pd.read_csv(p) for p in states.glob("runs/*/bc-state/*/*/evals.csv"))
    at_four = state_evals[state_evals["update"] == 4]["normalized_score"].mean()
    assert row["state_final"] == pytest.approx(at_four)
    assert at_four != pytest.approx(
        state_evals[state_evals["update"] == 6]["normalized_score"].mean()
    )
    assert "## Pixel-state gap at matched updates" in (out / "leaderboard.md").read_text()
    assert (out / "figures" / "pixel_state_gap_matched.png").stat().st_size > 5_000

    # State runs that stopped short of the pixel budget (here: read only to update 2) are met
    # at the largest update both sides evaluated, and the row says so.
    from benchmark.harness.results import select_cells
    from benchmark.report import gap

    pixel_evals = select_cells(pixels).evals
    shorter = select_cells(states).evals.query("update <= 2")
    (early,) = gap.matched_gap_table(pixel_evals, shorter).to_dict("records")
    assert (early["updates"], early["pixel_final_update"]) == (2, 4)
    pixel_at_two = pixel_evals[pixel_evals["update"] == 2]["normalized_score"].mean()
    assert early["pixel_final"] == pytest.approx(pixel_at_two)
    section = "\n".join(gap.matched_markdown(pd.DataFrame([early]), [str(states)]))
    assert f"| bc | {early['dataset']} | 2* (pixel final 4) |" in section
    assert gap.matched_gap_table(pixel_evals, shorter.query("update == 1")).empty
