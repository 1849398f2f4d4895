"""Baselines from outside the repository, end to end: the template package installed by pip, a
``--algos module:Class`` file, a script's registration, broken plugins, the leaderboard's
external rows, ``python -m benchmark.compare`` and submissions. Real pip installs, real smoke runs in
subprocesses (one smoke dataset, built by the first run, shared by the module's runs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from benchmark.harness.plugins import config_hash
from benchmark.report import compare
from benchmark.report import leaderboard as report
from benchmark.report.export_results import export

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "examples" / "vorb-plugin-template"
SMOKE = ("--profile", "smoke", "--device", "cpu", "--workers", "1")

# A baseline in a file outside the repository: it learns the dataset's mean action.
MY_AGENTS = '''
from dataclasses import dataclass

import torch

from benchmark.harness.registry import BaselineSpec


@dataclass(frozen=True)
class MeanConfig:
    batch_size: int = 32
    lr: float = 0.1


class MeanActionAgent:
    """The dataset's mean action, whatever the frames."""

    Config = MeanConfig
    name = "mean-action"

    def __init__(self, config, obs_shape, action_dim, device):
        self.mean = torch.zeros(action_dim, device=device, requires_grad=True)
        self.opt = torch.optim.SGD([self.mean], lr=config.lr)

    def update(self, batch):
        loss = ((batch.action - self.mean) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"bc_loss": loss.detach()}

    def act(self, obs, deterministic):
        return self.mean.detach().clamp(-1, 1).cpu().numpy()

    def state_dict(self):
        return {"mean": self.mean.detach().clone(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state):
        with torch.no_grad():
            self.mean.copy_(state["mean"])
        self.opt.load_state_dict(state["opt"])


SPEC = BaselineSpec("mean-spec", "my_agents:MeanConfig", "my_agents:MeanActionAgent", True, "spec")
'''

SCRIPT = """
import sys

from benchmark.harness import registry
from benchmark.harness.registry import BaselineSpec
from benchmark.run import main

registry.register(
    BaselineSpec("scripted-mean", "my_agents:MeanConfig", "my_agents:MeanActionAgent", True, "s")
)

if __name__ == "__main__":
    sys.exit(main())
"""

BROKEN_PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "broken-plugins"
version = "0.0.1"

[project.entry-points."vorb.baselines"]
broken-import = "broken_import:Agent"
no-update = "broken_plugins:NoUpdateAgent"
mutable-config = "broken_plugins:MutableConfigAgent"
bc-pixels = "broken_plugins:MutableConfigAgent"

[tool.setuptools]
py-modules = ["broken_plugins", "broken_import"]
"""

BROKEN_MODULE = """
from dataclasses import dataclass


@dataclass(frozen=True)
class Frozen:
    batch_size: int = 8


@dataclass
class Mutable:
    batch_size: int = 8


class NoUpdateAgent:
    Config = Frozen

    def act(self, obs, deterministic): ...
    def state_dict(self): ...
    def load_state_dict(self, state): ...


class MutableConfigAgent(NoUpdateAgent):
    Config = Mutable

    def update(self, batch): ...
"""


# -- helpers -------------------------------------------------------------------------------
def pip_install(source: Path, target: Path) -> None:
    """Install a package folder the way a user would, into a throw-away target."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    command += ["--no-build-isolation", "--target", str(target), str(source)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)


def run(
    args: list[str], minari: Path, cwd: Path = REPO, path: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"MINARI_DATASETS_PATH": str(minari), "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in path)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def git(folder: Path, *args: str) -> str:
    identity = ["-c", "user.email=test@vorb", "-c", "user.name=test"]
    done = subprocess.run(["git", *identity, *args], cwd=folder, capture_output=True, text=True)
    return done.stdout.strip()


def metas(results: Path, algo: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in results.glob(f"runs/*/{algo}/*/seed-*/meta.json")]


# -- module fixtures: installs and smoke runs, made once -----------------------------------
@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugins")
    (root / "minari").mkdir()
    return root


@pytest.fixture(scope="module")
def template(shared: Path) -> tuple[Path, str]:
    """The template, copied into a git checkout of its own (a user's repository) and installed
    from it by pip: (the install target, the checkout's commit)."""
    source = shared / "vorb-plugin-template"
    shutil.copytree(TEMPLATE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    git(source, "init", "-q")
    git(source, "add", "-A")
    git(source, "commit", "-qm", "template")
    pip_install(source, shared / "template-target")
    return shared / "template-target", git(source, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def outside(shared: Path) -> Path:
    """A folder outside the repository holding my_agents.py and a registering script."""
    folder = shared / "outside"
    folder.mkdir()
    (folder / "my_agents.py").write_text(MY_AGENTS)
    (folder / "run_mine.py").write_text(SCRIPT)
    return folder


@pytest.fixture(scope="module")
def template_results(shared: Path, template: tuple[Path, str]) -> Path:
    """tiny-bc, installed from the template, over 2 seeds at smoke scale."""
    results = shared / "template-results"
    args = ["-m", "benchmark.run", "--algos", "tiny-bc", "--seeds", "2", *SMOKE]
    done = run([*args, "--results", str(results)], shared / "minari", path=(template[0],))
    assert done.returncode == 0, done.stderr[-3000:]
    return results


@pytest.fixture(scope="module")
def reference_results(shared: Path, outside: Path) -> Path:
    """The reference: built-in BC and mean-action from ``--algos my_agents:MeanActionAgent``,
    run from the outside folder (so my_agents is importable there, as for a user), one seed."""
    results = shared / "reference-results"
    args = ["-m", "benchmark.run", "--algos", "bc-pixels,my_agents:MeanActionAgent", *SMOKE]
    done = run([*args, "--results", str(results)], shared / "minari", cwd=outside)
    assert done.returncode == 0, done.stderr[-3000:]
    return results


@pytest.fixture(scope="module")
def other_protocol_results(shared: Path, outside: Path) -> Path:
    """A script's registration, run with two evaluation episodes: another protocol."""
    results = shared / "other-protocol"
    args = ["run_mine.py", "--algos", "scripted-mean", "--set", "eval_episodes=2", *SMOKE]
    done = run([*args, "--results", str(results)], shared / "minari", cwd=outside)
    assert done.returncode == 0, done.stderr[-3000:]
    return results


# -- registration and provenance -----------------------------------------------------------
def test_template_installed_by_pip_reaches_the_leaderboard_marked_external(
    template: tuple[Path, str], template_results: Path, reference_results: Path, tmp_path: Path
) -> None:
    records = metas(template_results, "tiny-bc")
    assert len(records) == 2 and {m["status"] for m in records} == {"done"}
    plugin = records[0]["plugin"]
    assert plugin["external"] and plugin["origin"] == "entry point"
    assert plugin["distribution"] == "vorb-plugin-template" and plugin["version"] == "0.1.0"
    assert plugin["entry_point"] == "vorb.baselines: tiny-bc = vorb_tiny_bc:TinyBCAgent"
    assert plugin["git"]["commit"] == template[1] and plugin["git"]["dirty"] is False
    sys.path.insert(0, str(template[0]))  # to rebuild the config the cell ran and hash it
    try:
        from vorb_tiny_bc import TinyBCConfig

        assert plugin["config_sha256"] == config_hash(TinyBCConfig(batch_size=8))
    finally:
        sys.path.remove(str(template[0]))

    out = tmp_path / "report"
    assert (
        report.main(["--results", str(template_results), str(reference_results), "--out", str(out)])
        == 0
    )
    board = pd.read_csv(out / "leaderboard.csv")
    origin = dict(zip(board["algo"], board["origin"], strict=False))
    assert origin == {"tiny-bc": "external", "mean-action": "external", "bc-pixels": "built-in"}
    assert (board.loc[board["algo"] == "tiny-bc", "runs"] == 2).all()
    text = (out / "leaderboard.md").read_text()
    assert "| tiny-bc (external) | pixels | vorb/walker-walk/random-v0 | 2 |" in text
    assert "| bc-pixels | pixels | vorb/walker-walk/random-v0 | 1 |" in text
    assert f"| tiny-bc | external | vorb-plugin-template | 0.1.0 | {template[1][:10]} |" in text
    for figure in ("learning_curves_update", "aggregate_iqm", "performance_profile"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 0


def test_algos_module_class_from_a_file_outside_the_repository(
    reference_results: Path, outside: Path, shared: Path
) -> None:
    (record,) = metas(reference_results, "mean-action")
    assert record["status"] == "done"
    plugin = record["plugin"]
    assert plugin["origin"] == "reference" and plugin["agent"] == "my_agents:MeanActionAgent"
    assert plugin["module_file"] == str(outside / "my_agents.py")
    assert plugin["git"] is None and plugin["distribution"] is None  # a loose file, no checkout
    # A BaselineSpec object works the same way.
    args = ["-m", "benchmark.run", "--algos", "my_agents:SPEC", "--plan", "--profile", "smoke"]
    done = run(args, shared / "minari", cwd=outside)
    assert done.returncode == 0, done.stderr
    assert "mean-spec" in done.stdout


def test_a_scripts_registration_runs_in_the_workers(other_protocol_results: Path) -> None:
    (record,) = metas(other_protocol_results, "scripted-mean")
    assert record["status"] == "done" and record["plugin"]["origin"] == "script"
    assert record["setup"]["evaluation"]["episodes"] == 2


@pytest.fixture(scope="module")
def broken_target(shared: Path) -> Path:
    source = shared / "broken-plugins"
    source.mkdir()
    (source / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (source / "broken_plugins.py").write_text(BROKEN_MODULE)
    (source / "broken_import.py").write_text("import vorb_no_such_dependency  # noqa: F401\n")
    pip_install(source, shared / "broken-target")
    return shared / "broken-target"


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("broken-import", "broken_import:Agent", "cannot import broken_import:Agent: "
         "ModuleNotFoundError: No module named 'vorb_no_such_dependency'"),
        ("no-update", "broken_plugins:NoUpdateAgent", "lacks update (the Agent protocol"),
        ("mutable-config", "broken_plugins:MutableConfigAgent",
         "config broken_plugins:MutableConfigAgent.Config is not a frozen dataclass"),
        ("bc-pixels", "broken_plugins:MutableConfigAgent", "the name 'bc-pixels' is taken by a built-in"),
    ],
)  # fmt: skip
def test_a_broken_plugin_is_a_usage_error_naming_it(
    broken_target: Path, shared: Path, name: str, value: str, problem: str
) -> None:
    args = ["-m", "benchmark.run", "--algos", name, "--plan", "--profile", "smoke"]
    done = run(args, shared / "minari", path=(broken_target,))
    assert done.returncode == 2, done.stderr
    where = f"plugin '{name}' (entry point vorb.baselines: {name} = {value}, "
    assert where + "distribution broken-plugins 0.0.1): " in done.stderr
    assert problem in done.stderr and "Traceback" not in done.stderr


def test_broken_references_and_registrations(
    outside: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmark.harness import registry
    from benchmark.harness.plugins import PluginError
    from benchmark.harness.registry import BaselineSpec
    from benchmark.run import main

    (outside / "half_agents.py").write_text(
        MY_AGENTS.replace("    def act(self", "    def not_act(self").replace("SPEC = ", "_ = ")
    )
    monkeypatch.syspath_prepend(str(outside))
    cases = {
        "no_such_module:Agent": "cannot import no_such_module: ModuleNotFoundError",
        "half_agents:Missing": "half_agents has no Missing",
        "half_agents:MeanActionAgent": "agent half_agents:MeanActionAgent lacks act",
        "half_agents:MeanConfig": "half_agents:MeanConfig has no Config attribute",
    }
    for reference, problem in cases.items():
        with pytest.raises(SystemExit) as exit_status:
            main(["--algos", reference, "--plan", "--profile", "smoke"])
        assert exit_status.value.code == 2
        assert f"--algos {reference}" in (err := capsys.readouterr().err) and problem in err
    taken = BaselineSpec("bc-pixels", "my_agents:MeanConfig", "my_agents:MeanActionAgent", True, "")
    with pytest.raises(
        PluginError,
        match="plugin 'bc-pixels' \\(registered by a script\\): the name 'bc-pixels' is taken by a built-in",
    ):
        registry.register(taken)


# -- the template agent learns -------------------------------------------------------------
def test_the_template_agent_learns(
    template: tuple[Path, str],
    template_results: Path,
    shared: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the smoke run's real dataset: its behaviour-cloning loss on a fixed batch falls."""
    import minari
    import torch

    from benchmark.data.sampler import FrameReplay

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(shared / "minari"))
    monkeypatch.syspath_prepend(str(template[0]))
    from vorb_tiny_bc import TinyBCAgent, TinyBCConfig

    replay = FrameReplay.from_minari(minari.load_dataset("vorb-smoke/walker-walk/random-v0"))
    batch = replay.sample(32, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    agent = TinyBCAgent(TinyBCConfig(), replay.obs_shape, replay.action_dim, "cpu")
    losses = [float(agent.update(batch)["bc_loss"]) for _ in range(150)]
    assert losses[-1] < 0.5 * losses[0], losses[::30]


# -- compare and submissions ---------------------------------------------------------------
def test_compare_prints_intervals_improvement_and_verdicts_with_unequal_seeds(
    template_results: Path, reference_results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = compare.main(["--results", str(template_results), "--reference", str(reference_results)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "P(improvement) [95% CI]" in out and "MISMATCH" not in out
    rows = [line for line in out.splitlines() if line.startswith("| tiny-bc |")]
    assert len(rows) == 4  # against bc and mean-action, on the dataset and in aggregate
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[3] == "2" and cells[6] == "1"  # 2 seeds against 1
        assert all(cells[i].count("[") == 1 for i in (4, 5, 7, 8, 9))
        assert ", range [" in cells[4]  # 2 seeds: the bootstrap interval is their range
        assert cells[8].endswith("[-]")  # one reference run: no t interval
        assert cells[10] in ("**better**", "**within**", "**worse**")


def test_compare_leaves_out_cells_still_training(
    template_results: Path,
    reference_results: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A cell without its ``done`` marker has no final score: it is listed, not compared."""
    running = tmp_path / "running"
    shutil.copytree(template_results, running)
    [marker] = running.glob("runs/*/tiny-bc/*/seed-1/done")
    marker.unlink()
    assert compare.main(["--results", str(running), "--reference", str(reference_results)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| tiny-bc |")]
    assert rows and all(row.split("|")[4].strip() == "1" for row in rows)  # seed 0 alone
    assert "Not compared, still training (no final score yet):" in out
    assert "- --results tiny-bc vorb/walker-walk/random-v0 seed 1 (smoke): at update" in out


def test_compare_refuses_another_protocol_naming_the_field(
    template_results: Path, other_protocol_results: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--results", str(template_results), "--reference", str(other_protocol_results)]
    assert compare.main(args) == 2
    err = capsys.readouterr().err
    assert (
        "protocol mismatch" in err and "eval_episodes differs on vorb/walker-walk/random-v0" in err
    )
    assert compare.main([*args, "--allow-mismatch"]) == 0
    out = capsys.readouterr().out
    assert out.count("!! PROTOCOL MISMATCH") == 2 and "eval_episodes differs" in out


def test_verdicts_follow_the_improvement_interval() -> None:
    """Real rliable statistics on made-up scores: 5 seeds against 3, unequal counts."""
    frame = lambda algo, scores: pd.DataFrame(  # noqa: E731
        {"algo": algo, "dataset": "d", "seed": range(len(scores)), "final": scores}
    )
    mine, theirs = frame("x", [60.0, 61, 62, 63, 64]), frame("y", [10.0, 11, 12])
    (on_d, _) = compare.compare_pair(mine, theirs, "x", "y")
    assert (on_d.runs, on_d.reference_runs) == (5, 3) and on_d.verdict == "better"
    assert on_d.improvement.point == pytest.approx(1.0)
    (worse, _) = compare.compare_pair(theirs, mine, "y", "x")
    assert worse.verdict == "worse"
    (within, _) = compare.compare_pair(frame("x", [1.0, 9, 2]), frame("y", [8.0, 2, 3]), "x", "y")
    assert within.verdict == "within"


def unpack_submission(results: Path, folder: Path) -> None:
    archive = folder.parent / f"{folder.name}.tar.gz"
    export(results, archive)
    folder.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")


def test_submissions_sit_beside_the_baselines_and_another_protocol_is_refused(
    template_results: Path,
    reference_results: Path,
    other_protocol_results: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    submissions = tmp_path / "results" / "submissions"
    unpack_submission(template_results, submissions / "tiny-bc-by-someone")
    out = tmp_path / "report"
    args = ["--results", str(reference_results), "--out", str(out)]
    assert report.main([*args, "--submissions", str(submissions)]) == 0
    board = pd.read_csv(out / "leaderboard.csv")
    origin = dict(zip(board["algo"], board["origin"], strict=False))
    assert origin["tiny-bc"] == "submission tiny-bc-by-someone" and origin["bc-pixels"] == "built-in"
    assert "| tiny-bc (submission tiny-bc-by-someone) |" in (out / "leaderboard.md").read_text()

    unpack_submission(other_protocol_results, submissions / "two-episodes")
    capsys.readouterr()
    assert report.main([*args, "--submissions", str(submissions)]) == 2
    err = capsys.readouterr().err
    assert "submission two-episodes" in err and "eval_episodes differs" in err
