"""``python -m benchmark.lease``: the stages of a GPU slot after the install (see ``__init__``).

Called by ``scripts/gpu_lease.sh``, which installs the bundle first (this module needs the
packages it installs) and passes the install's outcome and the slot's start time along.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmark.harness.cost import parse_duration
from benchmark.harness.overrides import Overrides
from benchmark.harness.profiles import EXPERT
from benchmark.harness.profiles import get as get_profile
from benchmark.lease import plan as slot_plan
from benchmark.lease.speed import gpu_suite
from benchmark.lease.stages import SlotRecord, StageResult, run_command
from benchmark.run import budget_reserve

SCALES = {"smoke": "smoke", "full": "full"}  # --scale -> the profile its cells run
# Upper bounds on each stage's share of the budget; the reference cells get what is left.
STAGE_SHARE = {"datasets": 0.2, "smoke": 0.15, "speed": 0.25}
EXPORT_RESERVE_S = 20.0  # the results archive is written after the cells, whatever happens
PY = sys.executable


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmark.lease", description=__doc__)
    parser.add_argument("--out", required=True, help="the folder handed back (at most 8 files)")
    parser.add_argument(
        "--work", required=True, help="datasets, runs and checkpoints (not handed back)"
    )
    parser.add_argument("--budget", default="9m", help="the whole slot's time (default 9m)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--scale", choices=list(SCALES), default="full")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per cell group (default 3)")
    parser.add_argument("--reference", default="results/reference", help="cells already done")
    parser.add_argument(
        "--workers", type=int, default=None, help="default: one per core, at most 16"
    )
    parser.add_argument("--started", type=float, default=None, help="slot start (time.time())")
    parser.add_argument("--install-status", default="skipped")
    parser.add_argument("--install-seconds", type=float, default=0.0)
    parser.add_argument("--install-detail", default="")
    return parser


def child_env(work: Path, device: str) -> dict[str, str]:
    """The stages' environment: unbuffered, progress bars at most every 30 s, datasets under ``work``, EGL on
    the GPU (with NVIDIA's vendor file where the driver mount has it)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_MININTERVAL="30", RAY_USAGE_STATS_ENABLED="0")
    env.setdefault("MINARI_DATASETS_PATH", str(work / "minari"))
    if device == "cuda":
        env.setdefault("MUJOCO_GL", "egl")
        vendor = Path("/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json")
        if vendor.is_file():
            env.setdefault("__EGL_VENDOR_LIBRARY_FILENAMES", str(vendor))
    return env


class Slot:
    """One slot's stages, in order, each recorded before the next starts."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out, self.work = Path(args.out), Path(args.work)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)
        self.profile = get_profile(SCALES[args.scale])
        self.env = child_env(self.work, args.device)
        self.workers = args.workers or min(os.cpu_count() or 1, 16)
        started = args.started or time.time()
        self.record = SlotRecord(
            self.out / "status.json",
            header={
                "slot_id": time.strftime("%Y%m%d-%H%M%S", time.gmtime(started)),
                "command": os.environ.get("VORB_LEASE_COMMAND", " ".join(sys.argv)),
                "device": args.device,
                "scale": args.scale,
                "git": _git_commit(),
            },
            started=started,
            budget_s=parse_duration(args.budget, "--budget"),
        )
        done = slot_plan.done_cells(args.reference)
        self.specs = slot_plan.pixel_specs()
        groups = slot_plan.cell_groups(self.profile.name, args.seeds, self.specs)
        self.pending = slot_plan.pending_group(groups, done)
        self.cell_start_s: float | None = None  # measured by the smoke stage
        self.dataset = next((c.dataset for c in self.pending if c.dataset != "online"), EXPERT)

    # -- helpers -------------------------------------------------------------------------------
    def deadline(self, stage: str) -> float:
        share = STAGE_SHARE[stage] * self.record.budget_s
        return time.time() + min(share, self.record.left_s() - EXPORT_RESERVE_S)

    def run(self, name: str, commands: Sequence[Sequence[str]], deadline: float) -> StageResult:
        """Run the commands in turn; the stage fails at the first that fails."""
        result = StageResult(name, "ok", 0.0, commands=[" ".join(c) for c in commands])
        for argv in commands:
            rc, seconds = run_command(argv, deadline, self.env)
            result.seconds += seconds
            if rc is None:
                result.status, result.detail = "timeout", f"killed at the deadline: {argv[2]}"
                break
            if rc != 0:
                result.status, result.detail = "failed", f"exit {rc}: {' '.join(argv[2:4])}"
                break
        return result

    def dataset_target(self) -> str:
        return self.profile.dataset_id(self.dataset)

    # -- the stages ----------------------------------------------------------------------------
    def install(self) -> None:
        a = self.args
        self.record.add(
            StageResult("install", a.install_status, a.install_seconds, a.install_detail)
        )

    def datasets(self) -> None:
        build = python_m("benchmark.datasets", "build", self.dataset, "--quiet")
        build += flags(workers=self.workers)
        if self.profile.dataset_transitions is not None:  # small profiles: their own variant
            steps = round(self.profile.episode_time_limit_s / 0.05)  # agent step: 0.05 s
            build += flags(
                transitions=self.profile.dataset_transitions,
                episode_steps=steps,
                target_id=self.dataset_target(),
            )
        verify = python_m("benchmark.datasets", "verify", self.dataset_target())
        self.record.add(self.run("datasets", [build, verify], self.deadline("datasets")))

    def smoke_args(self) -> list[str]:
        # 16 random steps + 8 updates: the online cell crosses an episode boundary (20 steps)
        # after an evaluation, so it too writes a checkpoint to load back.
        return flags(
            profile="smoke",
            algos=",".join(s.name for s in self.specs),
            datasets=EXPERT,
            set=["updates=8", "initial_random_steps=16"],
            device=self.args.device,
            workers=min(self.workers, 5),
            results=self.work / "smoke",
        )

    def smoke(self) -> None:
        deadline = self.deadline("smoke")
        result = self.run("smoke", [python_m("benchmark.run", *self.smoke_args())], deadline)
        if result.status == "ok":  # a cell's start-up cost on this device, for the plan
            lanes = min(self.workers, 5)
            self.cell_start_s = result.seconds / math.ceil(len(self.specs) / lanes)
            check_smoke = python_m("benchmark.lease.smoke", "--", *self.smoke_args())
            check = self.run("smoke", [check_smoke], deadline)
            result.seconds += check.seconds
            result.commands += check.commands
            result.status, result.detail = check.status, check.detail
        self.record.add(result)

    def speed(self) -> None:
        deadline = self.deadline("speed")
        algos = ",".join(sorted({c.algo for c in self.pending} or {s.name for s in self.specs}))
        probe = python_m("benchmark.lease.probe")
        probe += flags(
            algos=algos,
            profile=self.profile.name,
            device=self.args.device,
            out=self.out / "probe.json",
            dataset=self.dataset_target() if self.record.ok("datasets") else None,
            cell_start_s=None if self.cell_start_s is None else f"{self.cell_start_s:.2f}",
        )
        result = self.run("speed", [probe], deadline)
        if result.status == "ok" and self.args.device == "cuda":
            gpu = gpu_suite(self.out / "speed.json", self.work, deadline, self.env)
            result.seconds += gpu.seconds
            result.commands += gpu.commands
            result.status, result.detail = gpu.status, gpu.detail
        elif result.status == "ok":
            result.detail = "probe only: the speed suite's variants need CUDA"
        self.record.add(result)

    def cells(self) -> None:
        started = time.time()
        if not self.record.ok("speed") and not (self.out / "probe.json").is_file():
            self.record.add(StageResult("cells", "skipped", 0.0, "no probe: nothing to plan with"))
            return
        available = self.record.left_s() - EXPORT_RESERVE_S
        probe = slot_plan.Probe.read(self.out / "probe.json")
        configs = {s.name: Overrides().config_for(s, self.profile) for s in self.specs}
        steps = {n: getattr(c, "initial_random_steps", 0) for n, c in configs.items()}
        lanes = min(self.workers, max(1, len(self.pending)))
        reserve = budget_reserve(available)
        chosen = slot_plan.fit(self.pending, available - reserve, self.profile, probe, lanes, steps)
        self.record.extra["plan"] = chosen.to_json()
        if not chosen.cells:
            detail = "the grid is complete" if not self.pending else "no cell fits the time left"
            self.record.add(StageResult("cells", "skipped", time.time() - started, detail))
            return
        result = StageResult("cells", "ok", 0.0)
        for algos, dataset, seeds in chosen.commands():  # each gets the budget its turn leaves
            left = self.record.left_s() - EXPORT_RESERVE_S
            command = python_m("benchmark.run")
            command += flags(
                profile=self.profile.name,
                algos=",".join(algos),
                datasets=dataset,
                seeds=seed_list(seeds),
                device=self.args.device,
                workers=min(self.workers, len(seeds) * len(algos)),
                set=f"updates={chosen.updates}",
                results=self.work / "cells",
                time_budget=f"{int(left)}s",
            )
            more = self.run("cells", [command], time.time() + left)
            result.seconds += more.seconds
            result.commands += more.commands
            if more.status != "ok":
                result.status, result.detail = more.status, more.detail
        self.record.add(result)

    def export(self) -> None:
        if not (self.work / "cells" / "runs").is_dir():
            self.record.add(StageResult("export", "skipped", 0.0, "no reference cells ran"))
            return
        command = python_m("benchmark.export_results")
        command += flags(results=self.work / "cells", out=self.out / "results.tar.gz")
        self.record.add(self.run("export", [command], time.time() + EXPORT_RESERVE_S + 30))

    def all(self) -> int:
        self.install()
        for stage in (self.datasets, self.smoke, self.speed, self.cells, self.export):
            stage()
        self.record.extra["finished"] = True
        self.record.write()
        return 0 if all(s.status in ("ok", "skipped") for s in self.record.stages) else 1


def python_m(module: str, *args: str) -> list[str]:
    """``python -m module args...`` with this interpreter."""
    return [PY, "-m", module, *args]


def flags(**values: object) -> list[str]:
    """``--name value`` for each keyword (underscores become dashes); a list repeats the flag
    once per item and None leaves the flag out."""
    argv: list[str] = []
    for name, value in values.items():
        for item in value if isinstance(value, list) else [] if value is None else [value]:
            argv += [f"--{name.replace('_', '-')}", str(item)]
    return argv


def seed_list(seeds: Sequence[int]) -> str:
    """``benchmark.run --seeds`` for exactly these seeds (a lone number would be a count)."""
    return ",".join(map(str, seeds)) + ("," if len(seeds) == 1 else "")


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None  # the slot's copy of the tree may have no .git


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    slot = Slot(args)
    print(
        f"[lease] {slot.profile.name} cells pending in this group: "
        f"{json.dumps([c.label for c in slot.pending])}",
        flush=True,
    )
    return slot.all()


if __name__ == "__main__":
    sys.exit(main())
