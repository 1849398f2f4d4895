"""``--launcher slurm`` through submitit.

Default suite: options, ``--plan``, and smoke grids through submitit's ``local`` cluster (real
submitit: pickled tasks, job folders, result pickles), whose tables equal the local launcher's.

Marked ``slurm`` (and ``slow``; run them with ``python -m pytest -m slurm tests/test_slurm.py``):
the same launcher against a real single-node SLURM (``scripts/slurm_local.sh``, started here
when it is not up and this is root): a smoke grid as one job array; a task given too little
time, requeued, resuming to the uninterrupted table; a task sent SLURM's warning signal
(preemption), requeued and resuming exactly, and one cancelled with ``scancel``, while their
sibling finishes, and a rerun that resumes the cancelled one. 10 to 35 minutes with the
machine's load: each requeue waits the 2 minutes SLURM holds a requeued job.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from benchmark import run
from benchmark.harness import registry, slurm
from benchmark.harness.cost import parse_duration
from benchmark.harness.results import Cell, CellPaths, load_metrics, load_results
from benchmark.harness.runner import threads_per_worker

REPO = Path(__file__).resolve().parent.parent
RANDOM = "vorb/walker-walk/random-v0"


def command(results: Path, *extra: str) -> list[str]:
    base = [sys.executable, "-m", "benchmark.run", "--profile", "smoke", "--device", "cpu"]
    return [*base, "--results", str(results), *extra]


def run_cli(results: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(results, *extra), cwd=REPO, capture_output=True, text=True, timeout=900, env=env
    )


def tables(results: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """evals and metrics, wall-clock aside (no two runs share it)."""
    evals = load_results(results).drop(columns="seconds").reset_index(drop=True)
    return evals, load_metrics(results).reset_index(drop=True)


def assert_same_tables(a: Path, b: Path) -> None:
    for left, right in zip(tables(a), tables(b), strict=True):
        assert len(left) > 0
        pd.testing.assert_frame_equal(left, right)


def submissions(results: Path) -> list[dict]:
    path = results / slurm.JOBS_FOLDER / slurm.SUBMISSIONS
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- options and plan --------------------------------------------------------------------------
def test_plan_prints_the_jobs_and_what_each_asks_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--algos", "all", "--profile", "smoke", "--launcher", "slurm", "--plan"]
    argv += ["--results", str(tmp_path / "r"), "--slurm-cells-per-task", "3", "--slurm-gpus", "1"]
    argv += ["--slurm-partition", "gpu", "--slurm-time", "4h", "--slurm-mem", "32"]
    finished = Cell("bc-pixels", RANDOM, 0, "smoke")
    CellPaths.of(tmp_path / "r", finished).folder.mkdir(parents=True)
    CellPaths.of(tmp_path / "r", finished).done.write_text("done\n")
    assert run.main(argv) == 0
    out = capsys.readouterr().out
    cells = len(registry.names()) - 1  # one is finished
    tasks = -(-cells // 3)
    assert f"1 job array of {tasks} task(s)" in out
    assert "each task asks for: partition gpu, 1 GPU(s), 4 CPU(s), 32 GB, 240 min" in out
    assert "1 cell(s) already finished: skipped, not submitted" in out
    assert f"task {tasks - 1}: sac-state-online | online | seed 0" in out
    assert "task 0: bc-pixels" not in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--slurm-time", "2x"], "--slurm-time '2x': expected a duration such as 90s, 25m, 4h"),
        (["--slurm-cpus", "0"], "cpus=0: expected an integer >= 1"),
        (["--slurm-cluster", "pbs"], "invalid choice: 'pbs' (choose from 'slurm', 'local')"),
        (["--slurm-time", "1"], "margin_s=60 (--slurm-margin): expected 0 <= margin < the time"),
        (["--device", "gpu"], "--device 'gpu': expected auto, cpu, cuda or cuda:N"),
        (["--time-budget", "5m"], "--time-budget is for the local and ray launchers"),
    ],
)
def test_bad_slurm_options_are_usage_errors_naming_the_valid_ones(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--algos", "bc-pixels", "--profile", "smoke", "--launcher", "slurm", "--plan", *extra]
    with pytest.raises(SystemExit) as exit_info:
        run.main(argv)
    assert exit_info.value.code == run.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_slurm_flags_without_the_slurm_launcher_are_usage_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        run.main(["--profile", "smoke", "--slurm-gpus", "1", "--no-wait", "--plan"])
    assert (
        "--slurm-gpus: only with --launcher slurm (--launcher is local)" in capsys.readouterr().err
    )


def test_a_config_file_then_flags_make_the_options(tmp_path: Path) -> None:
    config = tmp_path / "slurm.toml"
    config.write_text(
        '[slurm]\npartition = "gpu"\ntime = "2:00:00"\ngpus = 1\ncpus = 8\nmem_gb = 64\n'
        'account = "rl"\nqos = "high"\nparallel = 16\nsetup = ["module load cuda"]\n'
    )
    options = slurm.make_options(str(config), {"cpus": 6, "partition": None})
    assert (options.partition, options.time_min, options.gpus, options.cpus) == ("gpu", 120, 1, 6)
    assert options.setup == ("module load cuda",) and options.margin == 600
    parameters = options.executor_parameters()
    assert parameters["slurm_array_parallelism"] == 16 and parameters["timeout_min"] == 120
    # submitit itself accepts every parameter by name (the slurm_* ones against its SLURM executor)
    submitit = pytest.importorskip("submitit")
    executor = submitit.AutoExecutor(folder=tmp_path / "jobs", cluster="local")
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})

    config.write_text("partitions = 'gpu'\n")
    with pytest.raises(
        ValueError, match="unknown key\\(s\\) partitions; valid: cluster, partition"
    ):
        slurm.make_options(str(config), {})


def test_without_submitit_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)  # what Python does for a missing module
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[slurm\]'.*submitit==1\.5\.4"):
        slurm.require_submitit()


def test_cells_a_dead_job_left_read_as_the_plan_reads_them(tmp_path: Path) -> None:
    """After a job dies, its cells are read by the one reader ``run --plan`` uses: a cell it never
    started, and one whose failure it recorded (the whole message kept; the plan's line shows
    its first line)."""
    from benchmark.harness import runner
    from benchmark.harness.results import cell_progress

    cell, why = Cell("bc-state", RANDOM, 0, "smoke"), "job 7 ended before this cell did"
    outcome = slurm.cell_on_disk(str(tmp_path), cell, why)
    assert (outcome.status, outcome.updates) == ("failed", 0)
    assert outcome.error == f"{why}: not started"
    paths = CellPaths.of(tmp_path, cell)
    paths.folder.mkdir(parents=True)
    runner.record_failure(cell, paths, ValueError("batch_size=-5\nvalid: >= 1"))
    outcome = slurm.cell_on_disk(str(tmp_path), cell, why)
    assert outcome.error == "ValueError: batch_size=-5\nvalid: >= 1"
    described = cell_progress(tmp_path, cell).describe()
    assert described == "failed: ValueError: batch_size=-5 (a rerun retries it)"


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("90", 90), ("90m", 90), ("4h", 240), ("1d", 1440), ("2:30:00", 150), ("30s", 1)],
)
def test_slurm_times_read_as_sbatch_reads_them(text: str, minutes: int) -> None:
    assert slurm.parse_minutes(text) == minutes
    assert slurm.parse_minutes("1-12:00:00") == 36 * 60


def test_one_duration_parser_serves_the_time_budget_and_slurm() -> None:
    """A bare number is seconds for --time-budget, minutes for SLURM; the rest reads alike."""
    assert parse_duration("900", "--time-budget") == 900.0
    assert parse_duration("2:30:00", "--time-budget") == 9000.0
    assert slurm.parse_minutes("2:30:00") * 60 == parse_duration("2:30:00", "--time-budget")
    with pytest.raises(ValueError, match=r"--summary-every '0s': must be positive"):
        parse_duration("0s", "--summary-every")
    with pytest.raises(ValueError, match=r"--time-budget 'soon': expected .* 900 \(seconds\)"):
        parse_duration("soon", "--time-budget")


# -- submitit's local cluster ------------------------------------------------------------------
GRID = ("--algos", "bc-pixels,td3bc-state,sac-state-online")  # pixels, states, online
# The local launcher's runs below use 2 workers: a task gets the torch threads a worker gets
# (a thread count can change a float sum's order, so tables are compared at equal counts).
THREADS = str(threads_per_worker(2))
LOCAL_CLUSTER = ("--launcher", "slurm", "--slurm-cluster", "local", "--slurm-cpus", THREADS)


def test_a_smoke_grid_through_submitits_local_cluster_gives_the_local_launchers_tables(
    tmp_path: Path,
) -> None:
    local = run_cli(tmp_path / "local", *GRID, "--workers", "2")
    assert local.returncode == 0, local.stderr[-3000:]
    submitted = run_cli(tmp_path / "submitit", *GRID, *LOCAL_CLUSTER)
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert_same_tables(tmp_path / "local", tmp_path / "submitit")
    jobs = submissions(tmp_path / "submitit")
    assert len(jobs) == 3 and all(len(job["cells"]) == 1 for job in jobs)  # a task per cell
    for job in jobs:  # submitit's own files: the pickled task and its result
        folder = tmp_path / "submitit" / slurm.JOBS_FOLDER / job["job"]
        assert (folder / f"{job['job']}_submitted.pkl").exists()
        assert (folder / f"{job['job']}_0_result.pkl").exists()
    label = f"td3bc-state | {RANDOM} | seed 0"
    assert f"[cell] {label}: start at update 0 of 4" in submitted.stderr  # relayed from the task
    assert f"[cell] {label}: done after 4 updates" in submitted.stderr

    again = run_cli(tmp_path / "submitit", *GRID, *LOCAL_CLUSTER)
    assert again.returncode == 0 and again.stdout.count("skipped") == 3
    assert len(submissions(tmp_path / "submitit")) == 3  # nothing resubmitted
    assert_same_tables(tmp_path / "local", tmp_path / "submitit")


DIVERGING = '''
    from dataclasses import dataclass

    import numpy as np


    @dataclass(frozen=True)
    class DivergingConfig:
        batch_size: int = 4


    class DivergingAgent:
        """Diverges at its second update (tests)."""

        Config = DivergingConfig
        name = "diverging"

        def __init__(self, config, obs_shape, action_dim, device):
            self.action_dim, self.updates = action_dim, 0

        def update(self, batch):
            self.updates += 1
            return {"loss": float("nan") if self.updates >= 2 else 1.0}

        def act(self, obs, deterministic):
            return np.zeros(self.action_dim, dtype=np.float32)

        def state_dict(self):
            return {"updates": self.updates}

        def load_state_dict(self, state):
            self.updates = state["updates"]
'''


def plugin_env(tmp_path: Path) -> dict[str, str]:
    """A folder on PYTHONPATH with a diverging agent (``diverging_agent:DivergingAgent``):
    the tasks unpickle its spec, so they import it too."""
    (tmp_path / "plugins").mkdir(exist_ok=True)
    (tmp_path / "plugins" / "diverging_agent.py").write_text(textwrap.dedent(DIVERGING))
    return {**os.environ, "PYTHONPATH": str(tmp_path / "plugins")}


def test_a_failed_cell_fails_its_own_task_and_the_others_run_on(tmp_path: Path) -> None:
    algos = ("--algos", "diverging_agent:DivergingAgent,bc-state")
    done = run_cli(tmp_path / "r", *algos, *LOCAL_CLUSTER, env=plugin_env(tmp_path))
    assert done.returncode == run.EXIT_FAILED_CELLS, done.stderr[-3000:]
    assert "DivergedError: metric 'loss' is nan" in done.stdout
    failed = CellPaths.of(tmp_path / "r", Cell("diverging", RANDOM, 0, "smoke"))
    assert "DivergedError" in json.loads(failed.failed.read_text())["error"]
    assert CellPaths.of(tmp_path / "r", Cell("bc-state", RANDOM, 0, "smoke")).done.exists()
    import submitit

    outcomes = {}
    for job in submissions(tmp_path / "r"):
        result = tmp_path / "r" / slurm.JOBS_FOLDER / job["job"] / f"{job['job']}_0_result.pkl"
        outcomes[job["cells"][0]["algo"]] = submitit.core.utils.pickle_load(result)[0]
    assert outcomes == {"diverging": "error", "bc-state": "success"}  # the task itself failed


def test_a_device_the_node_lacks_fails_the_tasks_cells_with_failed_json(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device cuda is no error here")
    done = run_cli(tmp_path / "r", "--algos", "bc-state", "--device", "cuda", *LOCAL_CLUSTER)
    assert done.returncode == run.EXIT_FAILED_CELLS, done.stderr[-3000:]
    failed = CellPaths.of(tmp_path / "r", Cell("bc-state", RANDOM, 0, "smoke")).failed
    error = json.loads(failed.read_text())["error"]
    assert "--device cuda: this node" in error and "has 0 CUDA device(s)" in error


# -- a real SLURM ------------------------------------------------------------------------------
def slurm_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return state.returncode == 0 and any(s in state.stdout for s in ("idle", "mix", "alloc"))


@pytest.fixture(scope="module")
def real_slurm() -> None:
    """The single-node SLURM of scripts/slurm_local.sh: started here if this is root."""
    if not slurm_up():
        if os.geteuid() != 0:
            pytest.skip("no SLURM here; start one as root: bash scripts/slurm_local.sh")
        subprocess.run(["bash", str(REPO / "scripts" / "slurm_local.sh")], check=True)
    assert slurm_up()


def final_states(array_id: str) -> dict[str, str]:
    """Every task of the array with its final state (SLURM lists ended jobs for MinJobAge):
    a task whose result is written may still be COMPLETING for a moment."""
    deadline = time.monotonic() + 120
    while True:
        out = subprocess.run(
            ["squeue", "-h", "--array", "-t", "all", "-o", "%i|%T", "-j", array_id],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        states = dict(line.split("|") for line in out.split())
        if not set(states.values()) & slurm.ACTIVE_STATES or time.monotonic() > deadline:
            return states
        time.sleep(1)


@pytest.mark.usefixtures("real_slurm")
@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.timeout(3600)  # a loaded machine: each requeue also waits 2 min
def test_a_smoke_grid_runs_as_one_slurm_job_array(tmp_path: Path) -> None:
    algos = ("--algos", ",".join([*registry.names(), "diverging_agent:DivergingAgent"]))
    args = (*algos, "--launcher", "slurm", "--slurm-cpus", "1", "--slurm-time", "10")
    done = run_cli(tmp_path / "r", *args, env=plugin_env(tmp_path))
    assert done.returncode == run.EXIT_FAILED_CELLS, done.stderr[-3000:]
    print(done.stderr[-6000:], done.stdout, sep="\n")  # the run, for the record
    jobs = submissions(tmp_path / "r")
    arrays = {job["job"].split("_")[0] for job in jobs}
    assert len(arrays) == 1 and len(jobs) == len(registry.names()) + 1  # one array, a task a cell
    states = final_states(arrays.pop())
    by_algo = {job["cells"][0]["algo"]: states[job["job"]] for job in jobs}
    assert by_algo.pop("diverging") == "FAILED"  # its failed.json says why
    assert set(by_algo.values()) == {"COMPLETED"}
    table = load_results(tmp_path / "r")
    assert sorted(table["algo"].unique()) == sorted(registry.names())
    assert (table.groupby("algo")["update"].max() == 4).all()
    assert "[slurm] " in done.stderr and "RUNNING" in done.stderr


@pytest.mark.usefixtures("real_slurm")
@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.timeout(3600)  # a loaded machine: each requeue also waits 2 min
def test_a_task_given_too_little_time_is_requeued_and_resumes_to_the_uninterrupted_table(
    tmp_path: Path,
) -> None:
    # One offline cell (stops anywhere are exact), timed here first, uninterrupted.
    cell = ("--algos", "td3bc-state", "--set", "updates=10000", "--set", "eval_interval=2500")
    fresh = run_cli(tmp_path / "fresh", *cell, "--workers", "2")
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    training_s = float(load_results(tmp_path / "fresh")["seconds"].max())
    # Each job's budget holds 30% of the training and a few seconds (less the task's start), so
    # a requeue is certain even if the job runs 3x faster than the run timed above (seen: the
    # timed run took 49 s beside a dataset build, the job 24 s, and half the time plus 10 s let
    # the one job finish). Three to five jobs finish the cell; the loop allows twelve.
    budget = 0.3 * training_s + 5
    minutes = math.ceil((budget + 10) / 60)
    config = tmp_path / "slurm.toml"
    config.write_text(
        f"time = {minutes}\nmargin_s = {minutes * 60 - budget:.0f}\nsignal_delay_s = 5\n"
        "requeues = 3\n"
    )
    args = ("--launcher", "slurm", "--slurm-config", str(config), "--slurm-cpus", THREADS)
    started, logs = time.monotonic(), ""
    for _ in range(3):  # the machine's load varies: past the requeues, the same command resumes
        requeued = run_cli(tmp_path / "requeued", *cell, *args)
        logs += requeued.stderr
        if requeued.returncode != run.EXIT_INCOMPLETE:
            break
    print(
        f"training {training_s:.0f} s: jobs of {minutes} min, budget {budget:.0f} s; "
        f"{time.monotonic() - started:.0f} s under SLURM"
    )
    print(logs[-6000:], requeued.stdout, sep="\n")
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    assert "requeueing the task" in logs
    starts = [line for line in logs.splitlines() if ": start at update " in line]
    assert len(starts) >= 2 and "start at update 0 of 10000" in starts[0]
    assert all(" start at update 0 " not in line for line in starts[1:])  # resumed, not restarted
    assert_same_tables(tmp_path / "fresh", tmp_path / "requeued")


def wait_for(path: Path, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 300
    while not path.exists():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


@pytest.mark.usefixtures("real_slurm")
@pytest.mark.slow
@pytest.mark.slurm
@pytest.mark.timeout(3600)  # a loaded machine: each requeue also waits 2 min
def test_preempted_and_cancelled_tasks_leave_their_siblings_finishing_and_resume_exactly(
    tmp_path: Path,
) -> None:
    """Three tasks: seed 0 cancelled with scancel, seed 1 sent SLURM's warning signal (what a
    preemption or a near time limit sends), seed 2 left alone."""
    cells = ("--algos", "td3bc-state", "--set", "updates=10000", "--set", "eval_interval=1000")
    fresh = run_cli(tmp_path / "fresh", *cells, "--seeds", "1,", "--workers", "2")
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    grid = (*cells, "--seeds", "3", "--launcher", "slurm", "--slurm-cpus", THREADS)
    log = tmp_path / "run.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command(tmp_path / "r", *grid), cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )
    seed = {
        n: CellPaths.of(tmp_path / "r", Cell("td3bc-state", RANDOM, n, "smoke")) for n in range(3)
    }
    wait_for(seed[0].checkpoint, process, log)
    job = {j["cells"][0]["seed"]: j["job"] for j in submissions(tmp_path / "r")}
    subprocess.run(["scancel", job[0]], check=True)
    wait_for(seed[1].checkpoint, process, log)
    subprocess.run(["scancel", "--signal", slurm.warning_signal().name, job[1]], check=True)
    assert process.wait(timeout=600) == run.EXIT_FAILED_CELLS
    text = log.read_text()
    print(text)
    assert not seed[0].done.exists() and not seed[0].failed.exists()  # cut short, not failed
    assert seed[1].done.exists() and seed[2].done.exists()
    ended = next(line for line in text.splitlines() if f"job {job[0]} ended before" in line)
    assert "stopped after update" in ended or "paused at update" in ended  # as --plan says
    assert "requeueing the task" in text and f"{job[1]}: PENDING" in text
    starts = [line for line in text.splitlines() if "seed 1: start at update" in line]
    assert len(starts) == 2 and " start at update 0 " not in starts[1]  # resumed, not restarted
    preempted = load_results(tmp_path / "r")
    seed_one = preempted[preempted["seed"] == 1].drop(columns="seconds").reset_index(drop=True)
    pd.testing.assert_frame_equal(seed_one, tables(tmp_path / "fresh")[0])

    rerun = run_cli(tmp_path / "r", *grid)
    print(rerun.stderr[-4000:], rerun.stdout, sep="\n")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert rerun.stdout.count("skipped") == 2 and len(submissions(tmp_path / "r")) == 4
    resumed = [line for line in rerun.stderr.splitlines() if "seed 0: start at update" in line]
    assert resumed and " start at update 0 " not in resumed[0]
    table = load_results(tmp_path / "r")
    assert (table.groupby("seed")["update"].max() == 10000).all() and len(table) == 30
