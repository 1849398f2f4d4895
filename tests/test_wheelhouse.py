"""Offline install: a wheelhouse from scripts/wheelhouse.sh, then scripts/setup.sh with no index.

The slow test builds the whole wheelhouse for this machine's Python (about 540 MB, a minute
here) and installs VORB from it into a fresh virtual environment (about 3 minutes), with pip
told to use no index, an unreachable index for good measure, and, where the machine allows it,
no network at all (a fresh network namespace).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INSTALLED = ("pyproject.toml", "README.md", "benchmark", "baselines", "scripts")


def offline_env(**extra: str) -> dict[str, str]:
    """pip with no index, no config file, no extra find-links and no cache: the wheelhouse alone;
    no PYTHONPATH either, so that the new environment's own VORB is what imports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VORB_", "PYTHONPATH"))}
    env |= {
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_INDEX_URL": "http://127.0.0.1:9/simple",  # nothing listens on the discard port
        "PIP_NO_CACHE_DIR": "1",
        "PYTHON": sys.executable,
    }
    return env | extra


def without_network() -> list[str]:
    """A command prefix that cuts the network off, if this machine lets us make a namespace."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


def bash(script: str, *args: str, env: dict[str, str] | None = None, cwd: Path = REPO):
    return subprocess.run(
        ["bash", script, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1200
    )


def test_wheelhouse_rejects_unknown_options_and_packages(tmp_path: Path) -> None:
    unknown = bash("scripts/wheelhouse.sh", str(tmp_path / "w"), "--abi", "cp311")
    assert unknown.returncode == 2
    assert (
        "unknown option '--abi'; valid: --python-version, --platform, --without" in unknown.stderr
    )
    misspelt = bash("scripts/wheelhouse.sh", str(tmp_path / "w"), "--without", "pytorch")
    assert misspelt.returncode != 0
    assert "--without ['pytorch']: not among the requirements" in misspelt.stderr
    assert "'torch'" in misspelt.stderr  # the valid names are listed
    assert not list((tmp_path / "w").glob("*.whl"))


def test_setup_refuses_a_folder_that_is_no_wheelhouse(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    env = offline_env(VORB_WHEELHOUSE=str(tmp_path / "empty"), VORB_VENV=str(tmp_path / "venv"))
    done = bash("scripts/setup.sh", env=env)
    assert done.returncode == 2
    assert f"VORB_WHEELHOUSE={tmp_path / 'empty'} is not a wheelhouse" in done.stderr
    assert not (tmp_path / "venv").exists()


@pytest.mark.slow
def test_setup_installs_vorb_from_the_wheelhouse_alone(tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    built = bash(
        "scripts/wheelhouse.sh", str(wheelhouse), env={**os.environ, "PYTHON": sys.executable}
    )
    assert built.returncode == 0, built.stderr[-3000:]
    names = {path.name.split("-")[0].lower() for path in wheelhouse.glob("*.whl")}
    assert {"torch", "rliable", "ray", "submitit", "pytest", "setuptools", "mujoco"} <= names

    checkout = tmp_path / "vorb"  # a copy, so that the editable install leaves the repo alone
    checkout.mkdir()
    for name in INSTALLED:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, checkout / name)
    venv = tmp_path / "venv"
    env = offline_env(VORB_WHEELHOUSE=str(wheelhouse), VORB_VENV=str(venv))
    installed = subprocess.run(
        [*without_network(), "bash", "scripts/setup.sh"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert f"from {wheelhouse}, no index" in installed.stdout

    python, env = str(venv / "bin" / "python"), offline_env()
    check = subprocess.run([python, "-m", "pip", "check"], env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    probe = "import benchmark, torch, ray, rliable, dm_control; print(benchmark.__file__)"
    imported = subprocess.run(
        [python, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert imported.stdout.strip() == str(checkout / "benchmark" / "__init__.py")
    plan = subprocess.run(
        [python, "-m", "benchmark.run", "--plan", "--profile", "smoke", "--algos", "bc-pixels"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert plan.returncode == 0 and "1 cells:" in plan.stdout, plan.stderr[-3000:]
