"""``python -m benchmark.lease.probe``: the speeds a slot's plan needs, measured on its device.

Seconds per update of each baseline (``benchmark.harness.cost``'s probe: a few timed updates on a random
batch at the profile's batch size), seconds per rendered agent step, and the seconds a cell
spends besides its updates and rendering (a smoke cell's wall-clock in the same slot, or else this
process's imports, plus loading the group's dataset onto the device), written as one JSON file that :class:`benchmark.lease.plan.Probe` reads.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402  (after the clock: the imports are part of a cell's start-up)
import json  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402

from benchmark.atomic import atomic_write_text  # noqa: E402
from benchmark.harness import cost, registry  # noqa: E402
from benchmark.run import build_parser, make_plan  # noqa: E402


def dataset_load_seconds(dataset_id: str | None, device: str) -> float:
    """Seconds to load a built dataset into a :class:`~benchmark.data.sampler.FrameReplay` on
    ``device`` (0 without one: online-only groups load none)."""
    if dataset_id is None:
        return 0.0
    # Late: minari and torch are needed only where a dataset is loaded (none for online groups).
    import minari
    import torch

    from benchmark.data.sampler import FrameReplay

    started = time.perf_counter()
    FrameReplay.from_minari(minari.load_dataset(dataset_id), device=torch.device(device))
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(prog="python -m benchmark.lease.probe", description=__doc__)
    parser.add_argument("--algos", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--dataset", default=None, help="a built Minari id to time loading")
    parser.add_argument(
        "--cell-start-s",
        type=float,
        default=None,
        help="a smoke cell's wall-clock on this device (process, imports, CUDA, environments); "
        "default: this process's own imports",
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    imports_s = time.perf_counter() - STARTED
    plan = make_plan(build_parser().parse_args(["--algos", args.algos, "--profile", args.profile]))
    torch.set_num_threads(1)  # as one of several workers
    update_s = {
        spec.name: cost.probe_update_seconds(registry.get(spec.name), plan, args.device)
        for spec in plan.specs
    }
    record = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "profile": args.profile,
        "update_s": update_s,
        "step_s": cost.probe_step_seconds(plan.profile),
        "start_s": (imports_s if args.cell_start_s is None else args.cell_start_s)
        + dataset_load_seconds(args.dataset, args.device),
    }
    atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
