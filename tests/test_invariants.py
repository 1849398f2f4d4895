"""What a refactor must not change: the numbers training produces, and the cells it resumes.

Three checks, each against values computed by the code at ``REFERENCE`` (the commit before the
layers were redrawn, issue 28):

- every built-in baseline's parameters and optimiser state after 3 updates from seed 0 on one
  real batch (``tests/agent_hashes.py``), as sha256, pinned;
- a smoke grid of every baseline: its ``evals.csv`` tables (wall-clock column aside), pinned;
- cells stopped by a kill under the reference code (pixel CQL-CURL, state TD3+BC) resume under
  this code and end with the tables of an uninterrupted run.

Float results differ between CPUs in their last bits: ATen picks kernels by the CPU's vector
width (``torch.backends.cpu.get_cpu_capability()``), and so may MKL. Measured on an AMD EPYC
with avx512f and avx512_bf16 (torch 2.13): forcing ``ATEN_CPU_CAPABILITY=avx2`` changes the
SAC-CURL and CQL-CURL pixel hashes (the others hold); ``ONEDNN_MAX_CPU_ISA=AVX2`` and
``MKL_ENABLE_INSTRUCTIONS=AVX2`` change none; ``MKL_CBWR=AVX2`` changes all ten. So the pins are
kept per capability: ``AVX512`` as this CPU runs, ``AVX2`` as ``ATEN_CPU_CAPABILITY=avx2`` runs
it here (an AVX2-only CPU's MKL may still differ: not measured). On a CPU whose capability has
no pin, or whose pin fails for a reason of its own, the frozen-reference test below decides: it
hashes the reference commit's agents (``git archive``) in the same run, on the same CPU, and
needs only the git history.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path

import pandas as pd
import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
REFERENCE = "032cd3c"  # the code every pin below was computed with
HASHES = REPO / "tests" / "agent_hashes.py"

_SAC_CURL = {
    "AVX512": "3f9a05dbf0a6190aad7f96bb79841ec5bfe7f82f6185377f2d5570d78e9df01a",
    "AVX2": "739a8060419b4e104b39273189e0a96b0391b744a05f0d907847d4496477b5fe",
}
_CQL_CURL = {
    "AVX512": "8c3945a8a7eb4213042f300d791004072cbc95dfb7a1d6dbb6b772ad8f30b1e2",
    "AVX2": "cb2cdbeb4ba2fcc3552813680caecfa95f38dbb0ed9ffcdee0745f832699a104",
}
# CQL-CURL with its Lagrange multiplier (``tests/agent_hashes.py`` VARIANTS): alpha' is stepped
# with the other optimisers after the one backward; the same bits as at REFERENCE.
_CQL_LAGRANGE = {
    "AVX512": "ac8691aae7174ae0d242bdd6e81bb02ec76089e46196fabcb5946573cde3544b",
    "AVX2": "6ae4a4d350c90992e9b2f563ff2fcf2d6bb578293277d54c3ed580dc8c141da7",
}
_SAME_ON_BOTH = {
    "bc-pixels": "5c3cdc1c3dc7cfa72bcf5a39bd1e46f9c9dc4f2396e2b7dbb5ffce0f95650826",
    "drqbc": "a84052740791d1a488cfb550d7646fe5859e697630cb287fc72d9ea0f20ff1cf",
    "sac-state-online": "a6fb57686431cddd56e3fccefa04d3d6dc9005babd94d91ec0125e42eeab993c",
    "sac-state-offline": "a6fb57686431cddd56e3fccefa04d3d6dc9005babd94d91ec0125e42eeab993c",
    "cql-state": "5077f9ec1734ece4048ae7e2b6fe6af0ee2d76c3f122b31f2b5d9e9b29b09b56",
    "bc-state": "f5bfa1402681e5922439e04c7beeca9f3d079e55c412788087f8be5920e5199b",
    # the actor on the first critic (f53e08a, before REFERENCE): TD3+BC as published
    "td3bc-state": "7ce632ac8b65ef9c259a4d31f2ab51c07d31d254e58a0730c792486d4f269b51",
}
AGENT_HASHES = {
    capability: {
        "sac-curl-online": _SAC_CURL[capability],
        "sac-curl-offline": _SAC_CURL[capability],
        "cql-curl": _CQL_CURL[capability],
        "cql-curl+lagrange": _CQL_LAGRANGE[capability],
        **_SAME_ON_BOTH,
    }
    for capability in ("AVX512", "AVX2")
}
# sha256 of the smoke grid's evals.csv files (every baseline, seed 0; ``evals_digest``).
EVALS = {
    "AVX512": "9a7a845feb6da4cc04d4aba85f0a6cf0db94021f079d526b91ed0431f5e8d644",
    "AVX2": "c8142e7eedf0dc35741f11845f12b7329a14b792a43e3c39642608452e0b75a5",
}
AS_AVX2 = {"ATEN_CPU_CAPABILITY": "avx2"}


def capabilities() -> list[tuple[str, dict[str, str]]]:
    """The dispatches this CPU can run with a pin: its own, and AVX2 forced where it has more."""
    own = torch.backends.cpu.get_cpu_capability()
    runs = [(own, {})] if own in AGENT_HASHES else []
    if own == "AVX512":
        runs.append(("AVX2", AS_AVX2))
    return runs


def hashes(env: dict[str, str], code: Path | None = None) -> dict[str, str]:
    extra = {"VORB_CODE": str(code)} if code is not None else {}
    done = subprocess.run(
        [sys.executable, str(HASHES)],
        env={**os.environ, **env, **extra},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    "capability, env",
    capabilities()
    or [
        pytest.param(
            "none",
            {},
            marks=pytest.mark.skip(
                "no pin for this CPU's capability: see test_agents_update_as_the_reference_code_does"
            ),
        )
    ],
)
def test_agent_hashes_are_pinned(capability: str, env: dict[str, str]) -> None:
    found = hashes(env)
    pinned = AGENT_HASHES[capability]
    assert set(pinned) <= set(found)
    differ = [name for name in pinned if found[name] != pinned[name]]
    assert not differ, f"{capability}: parameters after 3 updates changed for {differ}"


def reference_tree(tmp_path: Path) -> Path:
    """The reference commit's code (``git archive``), or a skip where history lacks it."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", REFERENCE, "baselines", "benchmark", "datasets"],
        capture_output=True,
        timeout=120,
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {REFERENCE} is not in this clone's history (shallow?)")
    tree = tmp_path / "reference"
    tree.mkdir()
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def test_agents_update_as_the_reference_code_does(tmp_path: Path) -> None:
    """The same hashes from the reference commit's agents, on this CPU, in this run."""
    assert hashes({}) == hashes({}, reference_tree(tmp_path))


def evals_digest(root: Path) -> str:
    """sha256 over every ``evals.csv`` under ``root`` (by relative path), ``seconds`` dropped."""
    sha = hashlib.sha256()
    for path in sorted(root.rglob("evals.csv")):
        table = pd.read_csv(path).drop(columns="seconds")
        sha.update(str(path.relative_to(root)).encode())
        sha.update(table.to_csv(index=False).encode())
    return sha.hexdigest()


def smoke(results: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmark.run",
        "--profile",
        "smoke",
        "--device",
        "cpu",
        "--results",
        str(results),
        *extra,
    ]


def run(command: list[str], code: Path = REPO, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        command,
        cwd=code,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_smoke_grid_evals_are_pinned(tmp_path: Path) -> None:
    own = torch.backends.cpu.get_cpu_capability()
    if own not in EVALS:
        pytest.skip(f"no pinned smoke grid for capability {own}")
    run(smoke(tmp_path / "r", "--algos", "all", "--workers", "2"))
    assert evals_digest(tmp_path / "r") == EVALS[own]


def kill_at_first_checkpoint(command: list[str], code: Path, results: Path, algo: str) -> None:
    """Start ``command`` in ``code``, SIGKILL its process group once ``algo``'s cell holds a
    checkpoint, before the cell is done."""
    process = subprocess.Popen(
        command,
        cwd=code,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not (found := list(results.glob(f"runs/*/{algo}/*/seed-0/checkpoint.pt"))):
        assert process.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (found[0].parent / "done").exists(), (
        "the cell finished before the kill: nothing was tested"
    )


# The lanes' baselines; a state update is ~10 ms, so TD3+BC runs long enough to be killed.
LANES = {"cql-curl": (), "td3bc-state": ("--set", "updates=400", "--set", "eval_interval=200")}


def test_checkpoints_of_the_reference_code_resume_bit_exactly(tmp_path: Path) -> None:
    """The lanes' cells (pixel CQL-CURL, state TD3+BC) stopped under the reference code resume
    under this one, and end with an uninterrupted run's tables."""
    reference = reference_tree(tmp_path)
    killed, fresh = tmp_path / "killed", tmp_path / "fresh"
    for algo, scale in LANES.items():
        command = smoke(killed, "--algos", algo, "--workers", "1", *scale)
        kill_at_first_checkpoint(command, reference, killed, algo)
        run(smoke(killed, "--algos", algo, "--workers", "1", *scale))
        run(smoke(fresh, "--algos", algo, "--workers", "1", *scale))
    for algo in LANES:
        [resumed] = killed.glob(f"runs/*/{algo}/*/seed-0/evals.csv")
        [uninterrupted] = fresh.glob(f"runs/*/{algo}/*/seed-0/evals.csv")
        pd.testing.assert_frame_equal(
            pd.read_csv(resumed).drop(columns="seconds"),
            pd.read_csv(uninterrupted).drop(columns="seconds"),
        )
