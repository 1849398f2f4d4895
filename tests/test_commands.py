"""Every command the README names starts under that name (``python -m ...``), in a fresh process:
the package's folders moved by stage (data, harness, report), the commands' names did not."""

from __future__ import annotations

import subprocess
import sys

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
