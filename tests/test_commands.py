"""Every command the README names starts under that name (``python -m ...``), in a fresh process:
the package's folders moved by stage (data, harness, report), the commands' names did not."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

COMMANDS = {  # module -> its parser's program name, as the README writes it
    "benchmark.run": "python -m benchmark.run",
    "benchmark.report": "python -m benchmark.report",
    "benchmark.compare": "python -m benchmark.compare",
    "benchmark.export_results": "python -m benchmark.export_results",
    "benchmark.datasets": "python -m benchmark.datasets",
    "benchmark.lease": "python -m benchmark.lease",
}


@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_the_command_starts_under_its_name(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: {COMMANDS[module]}"), done.stdout[:200]


# -- the README's compare examples, run as written ---------------------------------------------
REPO = Path(__file__).resolve().parents[1]
OPTIONAL = re.compile(r"\s*\[([^\]]+)\]")  # `[--against x]`: an optional argument


def readme_compare_examples() -> list[str]:
    """Every ``python -m benchmark.compare ...`` line of the README, twice: without its optional
    ``[...]`` arguments and with all of them."""
    lines = [
        line.strip()
        for line in (REPO / "README.md").read_text().splitlines()
        if line.strip().startswith("python -m benchmark.compare ")
    ]
    return [
        variant
        for line in lines
        for variant in (OPTIONAL.sub("", line), OPTIONAL.sub(r" \1", line))
    ]


def test_the_readme_has_compare_examples() -> None:
    assert len(readme_compare_examples()) >= 2  # the test below would otherwise test nothing


@pytest.mark.parametrize("example", readme_compare_examples())
def test_every_compare_example_in_the_readme_runs_as_written(example: str, tmp_path: Path) -> None:
    """Run from a folder where the README's relative paths hold: ``results/`` is the
    repository's (committed references read in place), and the user's results folder holds a
    user's run of one baseline (the reference's own td3bc-state cells: same protocol)."""
    args = shlex.split(example)
    (tmp_path / "results").symlink_to(REPO / "results")
    reference = REPO / args[args.index("--reference") + 1]
    mine = tmp_path / args[args.index("--results") + 1]
    for archive in sorted(reference.glob("*.tar.gz")):
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if "/td3bc-state/" in m.name]
            tar.extractall(mine, members=members, filter="data")
    assert any(mine.glob("runs/*/td3bc-state/*/seed-*/evals.csv")), f"no cells in {reference}"
    done = subprocess.run(
        [sys.executable, *args[1:]],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "| td3bc-state | td3bc-state | aggregate | " in done.stdout
    assert "**within**" in done.stdout  # the same cells on both sides
