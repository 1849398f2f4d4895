"""Which reference cells a GPU slot runs, and for how many updates.

A pixel agent's checkpoint is far larger than what a slot can hand back, so a cell cannot carry
over into a later slot: each slot runs cells that finish inside it. The order of the grid comes
from the question the benchmark was built for, the original CQL-CURL comparison (online SAC-CURL,
offline SAC-CURL and CQL-CURL on expert data, 3 seeds), then the other offline baselines on
expert, then every offline baseline on the other datasets. A slot takes the first group with
cells not yet in ``results/reference/`` and the largest update count (a multiple of the
profile's evaluation interval) whose estimated wall-clock, from the speed probed in the same
slot, fits the time left; if even the smallest does not fit, it drops seeds from the end.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmark.harness import registry
from benchmark.harness.cost import cell_cost
from benchmark.harness.profiles import EXPERT, MEDIUM_EXPERT, RANDOM, Profile
from benchmark.harness.results import CELL_GLOB, ONLINE, Cell

ORIGINAL_COMPARISON = ("sac-curl-online", "sac-curl-offline", "cql-curl")
OTHER_OFFLINE = ("bc-pixels", "drqbc")
# The original work's data is expert; the rest from the most to the least informative.
DATASET_ORDER = (
    EXPERT,
    MEDIUM_EXPERT,
    "vorb/walker-walk/medium-v0",
    "vorb/walker-walk/medium-replay-v0",
    RANDOM,
)
PLAN_SAFETY = 0.8  # plan on 80% of the time left: a cell that overruns is lost with its slot


@dataclass(frozen=True)
class Probe:
    """Speeds measured on the slot's device (``benchmark.lease.probe``).

    update_s: seconds per update of each baseline, alone on the device;
    step_s: seconds per rendered agent step (evaluation and online acting);
    start_s: seconds a cell spends before its first update (imports, dataset load).
    """

    update_s: dict[str, float]
    step_s: float
    start_s: float

    @classmethod
    def read(cls, path: str | Path) -> Probe:
        record = json.loads(Path(path).read_text())
        return cls(dict(record["update_s"]), float(record["step_s"]), float(record["start_s"]))


@dataclass(frozen=True)
class SlotPlan:
    """The cells a slot runs, all with ``updates`` updates, and the estimate behind it."""

    cells: tuple[Cell, ...]
    updates: int
    estimate_s: float
    available_s: float

    def commands(self) -> list[tuple[tuple[str, ...], str, tuple[int, ...]]]:
        """(algos, dataset, seeds) per ``benchmark.run`` command: cells sharing their seeds go
        in one command (the run makes the product of algos and seeds)."""
        seeds_of: dict[str, list[int]] = {}
        dataset = next((c.dataset for c in self.cells if c.dataset != ONLINE), EXPERT)
        for cell in self.cells:
            seeds_of.setdefault(cell.algo, []).append(cell.seed)
        by_seeds: dict[tuple[int, ...], list[str]] = {}
        for algo, seeds in seeds_of.items():
            by_seeds.setdefault(tuple(sorted(seeds)), []).append(algo)
        return [(tuple(algos), dataset, seeds) for seeds, algos in by_seeds.items()]

    def to_json(self) -> dict:
        return {
            "cells": [dataclasses.asdict(cell) for cell in self.cells],
            "updates": self.updates,
            "estimate_s": round(self.estimate_s, 1),
            "available_s": round(self.available_s, 1),
        }


def pixel_specs() -> list:
    """The registered pixel baselines: a GPU slot runs the pixel track (the state track's
    reference runs on CPUs)."""

    specs = (registry.get(name) for name in registry.names())
    return [spec for spec in specs if getattr(spec, "obs_kind", "pixels") == "pixels"]


def cell_groups(profile: str, seeds: int, specs: Sequence) -> list[tuple[Cell, ...]]:
    """The grid in the order slots run it, over the baselines ``specs`` (registry entries)."""
    online = {spec.name for spec in specs if not spec.offline}
    offline = [spec.name for spec in specs if spec.offline]
    first = [name for name in ORIGINAL_COMPARISON if name in online | set(offline)]
    second = [name for name in OTHER_OFFLINE if name in offline]
    ordered = [*first, *second, *sorted(set(offline) - set(first) - set(second))]

    def group(names: Sequence[str], dataset: str) -> tuple[Cell, ...]:
        return tuple(
            Cell(name, ONLINE if name in online else dataset, seed, profile)
            for name in names
            for seed in range(seeds)
        )

    later = [name for name in ordered if name not in online]
    groups = [group(first, EXPERT), group([n for n in ordered if n not in first], EXPERT)]
    groups += [group(later, dataset) for dataset in DATASET_ORDER[1:]]
    return [g for g in groups if g]


def done_cells(reference: str | Path) -> set[Cell]:
    """Cells finished in a results folder (``done`` marker), as their ``meta.json`` names them."""
    finished = set()
    for folder in Path(reference).glob(CELL_GLOB):
        if (folder / "done").is_file() and (folder / "meta.json").is_file():
            finished.add(Cell(**json.loads((folder / "meta.json").read_text())["cell"]))
    return finished


def pending_group(groups: Sequence[tuple[Cell, ...]], done: set[Cell]) -> tuple[Cell, ...]:
    """The first group's cells not yet done (empty when the grid is complete)."""
    for group in groups:
        pending = tuple(cell for cell in group if cell not in done)
        if pending:
            return pending
    return ()


def estimate_seconds(
    cells: Sequence[Cell],
    updates: int,
    profile: Profile,
    probe: Probe,
    workers: int,
    initial_steps: dict[str, int],
) -> float:
    """Wall-clock of ``cells`` at ``updates`` each, ``workers`` cells at a time on one device.

    Conservative: updates of concurrent cells are assumed to share the device (their times add
    up), rendering to spread over the workers; no cell can beat its own serial path."""
    scaled = dataclasses.replace(profile, updates=updates, algo_updates=())
    update_total, render_total, longest = 0.0, 0.0, 0.0
    for cell in cells:
        online = cell.dataset == ONLINE
        config = _Steps(initial_steps.get(cell.algo, 0))
        cost = cell_cost(scaled, cell.algo, config, online)
        updates_s = cost.updates * probe.update_s[cell.algo]
        render_s = (cost.eval_steps + cost.env_steps) * probe.step_s
        update_total += updates_s
        render_total += render_s
        longest = max(longest, probe.start_s + updates_s + render_s)
    lanes = max(1, min(workers, len(cells)))
    shared = update_total + render_total / lanes + math.ceil(len(cells) / lanes) * probe.start_s
    return max(shared, longest)


@dataclass(frozen=True)
class _Steps:
    """What :func:`benchmark.harness.cost.cell_cost` reads of a config: the online random warm-up."""

    initial_random_steps: int


def fit(
    pending: Sequence[Cell],
    available_s: float,
    profile: Profile,
    probe: Probe,
    workers: int,
    initial_steps: dict[str, int],
) -> SlotPlan:
    """The most updates for the most seeds of ``pending`` that fit in ``available_s``."""
    step = profile.eval_interval
    budget = available_s * PLAN_SAFETY
    seeds = sorted({cell.seed for cell in pending})
    for count in range(len(seeds), 0, -1):
        cells = tuple(cell for cell in pending if cell.seed in seeds[:count])
        rate = lambda n, cells=cells: estimate_seconds(  # noqa: E731
            cells, n, profile, probe, workers, initial_steps
        )
        if rate(step) > budget:
            continue
        updates = step
        # Largest multiple of the evaluation interval that fits (estimates grow with updates).
        low, high = 1, profile.updates // step
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if rate(middle * step) <= budget else (low, middle - 1)
        updates = low * step
        return SlotPlan(cells, updates, rate(updates), available_s)
    return SlotPlan((), 0, 0.0, available_s)
