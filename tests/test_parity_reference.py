"""The CORL-style parity references (benchmarks/corl_parity.py) train through VORB's harness."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmark.data.sampler import TransitionBatch
from benchmarks.corl_parity import ReferenceBCAgent, ReferenceTD3BCAgent

REPO = Path(__file__).resolve().parents[1]


def _batch(seed: int) -> TransitionBatch:
    g = torch.Generator().manual_seed(seed)
    return TransitionBatch(
        obs=torch.randn(32, 24, generator=g),
        action=torch.rand(32, 6, generator=g) * 2 - 1,
        reward=torch.rand(32, 1, generator=g),
        next_obs=torch.randn(32, 24, generator=g),
        not_done=torch.ones(32, 1),
    )


def _params(agent: ReferenceBCAgent | ReferenceTD3BCAgent) -> list[torch.Tensor]:
    return [
        t.detach().clone()
        for m in agent.reference.__dict__.values()
        if isinstance(m, torch.nn.Module)
        for t in m.parameters()
    ]


@pytest.mark.parametrize("agent_class", [ReferenceBCAgent, ReferenceTD3BCAgent])
def test_a_reloaded_reference_takes_the_update_the_original_takes(agent_class: type) -> None:
    torch.manual_seed(0)
    original = agent_class(agent_class.Config(), (24,), 6, "cpu")
    for step in range(3):
        original.update(_batch(step))
    torch.manual_seed(1)
    copy = agent_class(agent_class.Config(), (24,), 6, "cpu")
    assert any(not torch.equal(a, b) for a, b in zip(_params(original), _params(copy), strict=True))
    saved = io.BytesIO()  # through torch.save, as the harness's checkpoint: no shared tensors
    torch.save(original.state_dict(), saved)
    saved.seek(0)
    copy.load_state_dict(torch.load(saved, weights_only=False))
    for agent in (original, copy):
        torch.manual_seed(7)  # the harness restores the global RNGs with the checkpoint
        agent.update(_batch(3))
    for a, b in zip(_params(original), _params(copy), strict=True):
        assert torch.equal(a, b)


def test_the_references_run_as_plugins_of_the_state_track(tmp_path: Path) -> None:
    algos = "benchmarks.corl_parity:ReferenceTD3BCAgent,benchmarks.corl_parity:ReferenceBCAgent"
    env = os.environ | {"MINARI_DATASETS_PATH": str(tmp_path / "minari"), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "benchmark.run",
        "--profile",
        "smoke",
        "--algos",
        algos,
        "--results",
        str(tmp_path / "runs"),
        "--workers",
        "1",
    ]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    metas = sorted((tmp_path / "runs").glob("runs/smoke/*/*/seed-0/meta.json"))
    assert {meta.parts[-4] for meta in metas} == {"td3bc-corl-ref", "bc-corl-ref"}
    for meta in metas:
        record = json.loads(meta.read_text())
        assert record["status"] == "done" and record["plugin"]["origin"] == "reference"
        assert record["setup"]["config"]["batch_size"] == 8  # the smoke profile's override
