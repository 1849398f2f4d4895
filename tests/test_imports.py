"""The layers of the README's architecture, held against the code's imports (``import_graph.py``).

Every import counts, function-level ones included: no cycle among ``benchmark/`` and
``baselines/``; each layer imports only from the layers below it; outside ``baselines/`` only the
contract is imported (the harness reaches agents by the registry's ``module:Class`` strings);
agents import no data loader; no product module imports a test module.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_graph import REPO, TESTS, Import, cycles, imports

# (rank, modules): a module's layer is the most specific prefix listed. Equal ranks of different
# groups (data and agents) do not import each other.
LAYERS: dict[str, tuple[int, tuple[str, ...]]] = {
    "contract": (0, ("baselines.contract", "benchmark.atomic")),
    "data": (1, ("benchmark.data", "benchmark")),
    "agents": (1, ("baselines",)),
    "datasets": (2, ("benchmark.datasets",)),
    "harness": (3, ("benchmark.harness",)),
    "behaviour training": (4, ("benchmark.datasets.train_behaviour",)),
    "report": (5, ("benchmark.report",)),
    "commands": (
        6,
        (
            "benchmark.run",
            "benchmark.lease",
            "benchmark.compare",
            "benchmark.export_results",
            "benchmark.report.__main__",
            "benchmark.datasets.__main__",
        ),
    ),
}
# Function-level imports now; each keeps torch, matplotlib, minari or another heavy module out of
# a fast command's start (--help, --plan, report). A new one must say so, and raise this number.
LATE_IMPORTS = 14


def layer(module: str) -> str:
    best, length = "", -1
    for name, (_, prefixes) in LAYERS.items():
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > length:
                best, length = name, len(prefix)
    assert best, f"{module} is in no layer: add it to LAYERS"
    return best


def product(edge: Import) -> bool:
    return edge.target.split(".")[0] not in TESTS


def test_no_import_cycles() -> None:
    assert cycles([e for e in imports() if product(e)]) == []


def test_layers_point_down() -> None:
    upward = []
    for edge in filter(product, imports()):
        source, target = layer(edge.source), layer(edge.target)
        if source == target:
            continue
        (rank_s, _), (rank_t, _) = LAYERS[source], LAYERS[target]
        if rank_t >= rank_s:
            upward.append(f"{edge.source}:{edge.line} ({source}) -> {edge.target} ({target})")
    assert upward == []


def test_agents_are_reached_only_through_the_contract() -> None:
    wrong = []
    for edge in filter(product, imports()):
        into_agents = edge.target.startswith("baselines") and edge.target != "baselines.contract"
        if not into_agents:
            continue
        from_agents = edge.source.startswith("baselines")
        allowed = from_agents and edge.target.startswith("baselines.common")
        if not allowed:
            wrong.append(f"{edge.source}:{edge.line} -> {edge.target}")
    assert wrong == []


def test_no_product_module_imports_a_test_module() -> None:
    assert [f"{e.source}:{e.line} -> {e.target}" for e in imports() if not product(e)] == []


def test_late_imports_do_not_grow() -> None:
    late = [f"{e.source}:{e.line} -> {e.target}" for e in imports() if e.late]
    assert len(late) <= LATE_IMPORTS, "\n".join(late)


def test_the_graph_sees_what_it_should(tmp_path: Path) -> None:
    """The checks can fail: a cycle through a function-level import, an upward import and a
    test import are all found in a small tree."""
    for package, files in {
        "benchmark": {
            "__init__.py": "",
            "harness/__init__.py": "",
            "harness/a.py": "from benchmark.report import b\n",
            "report/__init__.py": "",
            "report/b.py": "def f():\n    from benchmark.harness import a\n    import benchmarks.x\n",
        },
        "baselines": {"__init__.py": ""},
        "benchmarks": {"x.py": ""},
        "tests": {},
    }.items():
        for name, text in files.items():
            path = tmp_path / package / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (tmp_path / package).mkdir(exist_ok=True)
    edges = imports(tmp_path)
    assert cycles(edges) == [["benchmark.harness.a", "benchmark.report.b"]]
    assert any(e.late and e.target == "benchmarks.x" for e in edges)
    up = [e for e in edges if layer(e.source) == "harness" and layer(e.target) == "report"]
    assert up and LAYERS["report"][0] > LAYERS["harness"][0]


STARTS_WITHOUT_TORCH = (
    "benchmark.run",
    "benchmark.report",
    "benchmark.compare",
    "benchmark.datasets",
)


@pytest.mark.parametrize("command", STARTS_WITHOUT_TORCH)
def test_help_starts_without_torch(command: str) -> None:
    """The reason for the late imports above: ``--help`` of every command loads no torch (the
    run command's ``--plan`` does: it reads the baselines' configs, which live in their agents'
    files)."""
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{command!r}, '--help']\n"
        "try:\n"
        f"    runpy.run_module({command!r}, run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('torch' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.stderr.strip().splitlines()[-1] == "False", done.stderr[-2000:]
