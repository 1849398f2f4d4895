"""``python -m benchmark.lease.smoke``: every baseline's checkpoint comes back on the device.

Run after ``benchmark.run --profile smoke`` (a few updates and one evaluation episode per
baseline, each cell checkpointed by the harness). For every cell it rebuilds the trainer the way
the harness resumes one (a fresh trainer on the device, the checkpoint loaded into it), checks
that every tensor of the restored state equals the saved one, and makes one more update from it:
a device mismatch between saved and restored state fails here, not in a reference cell.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmark.harness import runner


def mismatches(saved: Any, restored: Any, path: str = "") -> list[str]:
    """Where two nested states differ (tensors compared on the CPU, exactly)."""
    import torch

    if isinstance(saved, dict):
        if set(saved) != set(restored):
            return [f"{path}: keys {sorted(map(str, saved))} != {sorted(map(str, restored))}"]
        return [m for key in saved for m in mismatches(saved[key], restored[key], f"{path}/{key}")]
    if isinstance(saved, list | tuple):
        if len(saved) != len(restored):
            return [f"{path}: length {len(saved)} != {len(restored)}"]
        return [
            m
            for i, pair in enumerate(zip(saved, restored, strict=True))
            for m in mismatches(*pair, f"{path}[{i}]")
        ]
    if isinstance(saved, torch.Tensor):
        same = saved.shape == restored.shape and torch.equal(saved.cpu(), restored.cpu())
        return [] if same else [f"{path}: tensor differs"]
    if isinstance(saved, np.ndarray):
        return [] if np.array_equal(saved, restored) else [f"{path}: array differs"]
    return [] if saved == restored else [f"{path}: {saved!r} != {restored!r}"]


def check_cells(run_args: Sequence[str]) -> list[str]:
    """Round-trip every cell of the ``benchmark.run`` command ``run_args`` made; problems."""
    # Late: torch and the run command load only when cells are checked, not at --help.
    import torch

    from benchmark.harness.results import CellPaths
    from benchmark.run import build_parser, make_plan, make_tasks, prepare_datasets

    args = build_parser().parse_args(list(run_args))
    plan = make_plan(args)
    tasks = make_tasks(plan, args, args.results, prepare_datasets(plan, 1), workers=1)
    problems = []
    for task in tasks:
        paths = CellPaths.of(task.root, task.cell)
        if not paths.checkpoint.exists():
            problems.append(f"{task.cell.label}: no checkpoint at {paths.checkpoint}")
            continue
        saved = torch.load(paths.checkpoint, map_location="cpu", weights_only=False)["trainer"]
        # The harness's own resume path: a fresh trainer on the device, the checkpoint loaded.
        run, _ = runner.build_run(task, paths)
        found = mismatches(saved, run.trainer.state_dict())
        run.trainer.step()
        problems += [f"{task.cell.label}: {problem}" for problem in found]
        print(
            f"[smoke] {task.cell.label}: checkpoint round trip "
            f"{'ok' if not found else 'FAILED'}; one update after it ok"
        )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.lease.smoke", description=__doc__)
    parser.add_argument("run_args", nargs=argparse.REMAINDER, help="the benchmark.run arguments")
    args = parser.parse_args(argv)
    problems = check_cells([a for a in args.run_args if a != "--"])
    for problem in problems:
        print(f"[smoke] {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
