"""What a run costs before it starts (``python -m benchmark.run --plan [--probe]``).

Counts come from the plan; with ``--probe`` a few timed updates of each baseline on the chosen
device and a few rendered environment steps turn them into a wall-clock estimate, so that a user
learns before starting that ``full`` on a 2-core CPU takes months.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from benchmark.data.envs import ENV_ID
from benchmark.harness import registry
from benchmark.harness.precision import time_updates
from benchmark.harness.profiles import FULL_EPISODE_S, Profile
from benchmark.harness.results import CellProgress, cell_progress

PROBE_STEPS = 20  # rendered steps timed by --probe


@dataclass(frozen=True)
class CellCost:
    """Work of one cell: gradient updates and rendered environment steps."""

    updates: int
    evaluations: int
    eval_steps: int  # rendered steps of all its evaluation episodes
    env_steps: int  # rendered training steps (online cells)


def agent_steps_per_episode(profile: Profile) -> int:
    return round(profile.episode_time_limit_s / FULL_EPISODE_S * 500)


def cell_cost(
    profile: Profile, algo: str, config: Any, online: bool, obs_kind: str = "pixels"
) -> CellCost:
    updates = profile.updates_for(algo)
    evaluations = math.ceil(updates / profile.eval_interval_for(algo))
    if obs_kind == "state":  # the state walker renders nothing
        return CellCost(updates, evaluations, 0, 0)
    eval_steps = (
        evaluations * profile.eval_episodes_for(obs_kind) * agent_steps_per_episode(profile)
    )
    env_steps = updates + getattr(config, "initial_random_steps", 0) if online else 0
    return CellCost(updates, evaluations, eval_steps, env_steps)


def remaining_cost(cost: CellCost, progress: CellProgress, eval_interval: int) -> CellCost:
    """What is left of ``cost`` after ``progress``: the updates not done, the evaluations
    after them (one at every multiple of ``eval_interval`` and one at the end), and the
    rendered steps in proportion."""
    if progress.state == "finished":
        return CellCost(0, 0, 0, 0)
    done = min(progress.updates, cost.updates)
    evaluations = cost.evaluations - min(done // eval_interval, cost.evaluations)
    steps_per_evaluation = cost.eval_steps // max(1, cost.evaluations)
    env_steps = cost.env_steps * (cost.updates - done) // max(1, cost.updates)
    return CellCost(cost.updates - done, evaluations, evaluations * steps_per_evaluation, env_steps)


def plan_costs(plan: Any, root: str | Path | None = None) -> list[tuple[Any, CellCost]]:
    """(cell, cost) for every cell of a :class:`benchmark.run.Plan`; with ``root`` (a results
    folder), what is left of each cell's cost after its progress there."""

    costs = []
    for cell in plan.cells:
        spec = registry.get(cell.algo)
        config = plan.overrides.config_for(spec, plan.profile)
        cost = cell_cost(plan.profile, cell.algo, config, not spec.offline, spec.obs_kind)
        if root is not None:
            interval = plan.profile.eval_interval_for(cell.algo)
            cost = remaining_cost(cost, cell_progress(root, cell), interval)
        costs.append((cell, cost))
    return costs


def cost_line(costs: list[tuple[Any, CellCost]], episodes: int, what: str) -> str:
    updates = sum(c.updates for _, c in costs)
    evaluations = sum(c.evaluations for _, c in costs)
    rendered = sum(c.eval_steps + c.env_steps for _, c in costs)
    cells = sum(c.updates > 0 or c.evaluations > 0 for _, c in costs)
    return (
        f"{what}: {cells} cells, {updates:,} updates, {evaluations:,} evaluations "
        f"({episodes} episode(s) each), {rendered:,} rendered agent steps"
    )


def describe(
    plan: Any, workers: int, device: str, probe: bool, root: str | Path | None = None
) -> str:
    """The plan's cost; with ``root``, also what is left of it after the cells' progress there
    (the estimate, with ``probe``, is then of what is left)."""
    costs = plan_costs(plan)
    lines = [cost_line(costs, plan.profile.eval_episodes, "cost")]
    if root is not None:
        left = plan_costs(plan, root)
        if left != costs:
            costs = left
            lines.append(cost_line(left, plan.profile.eval_episodes, f"left in {root}"))
    if not probe:
        lines.append("(add --probe for a wall-clock estimate timed on this machine)")
        return "\n".join(lines)
    seconds = estimate_seconds(plan, costs, workers, device)
    lines.append(
        f"estimate on {device} with {workers} worker(s): {format_duration(seconds)} "
        "(cells spread evenly over the workers; workers sharing a device slow each other)"
    )
    return "\n".join(lines)


def estimate_seconds(plan: Any, costs: list, workers: int, device: str) -> float:
    """Sum of every cell's probed cost, divided among the workers."""
    import torch

    torch.set_num_threads(threads_per_worker(workers))
    per_update = {
        algo: probe_update_seconds(registry.get(algo), plan, device)
        for algo in {cell.algo for cell, _ in costs}
    }
    per_step = probe_step_seconds(plan.profile)
    total = sum(
        cost.updates * per_update[cell.algo] + (cost.eval_steps + cost.env_steps) * per_step
        for cell, cost in costs
    )
    return total / max(1, min(workers, len(costs)))


def probe_update_seconds(spec: Any, plan: Any, device: str) -> float:
    """Seconds per update of ``spec`` on ``device``: a few timed updates on a random batch."""
    return time_updates(spec, plan.overrides.config_for(spec, plan.profile), device)


def probe_step_seconds(profile: Profile) -> float:
    """Seconds per rendered agent step of the pixel walker (evaluation and online acting)."""

    env = gym.make(ENV_ID, time_limit_s=profile.episode_time_limit_s)
    try:
        env.reset(seed=0)
        started = time.perf_counter()
        for _ in range(PROBE_STEPS):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        return (time.perf_counter() - started) / PROBE_STEPS
    finally:
        env.close()


def parse_duration(text: str, flag: str, bare_unit_s: float = 1.0) -> float:
    """Seconds in a duration: ``90s``, ``25m``, ``4h``, ``1d``, ``2:30:00`` (H:MM:SS) or
    ``1-12:00:00`` (D-HH:MM:SS). A bare number counts in ``bare_unit_s``: seconds for
    ``--time-budget``, minutes for SLURM's time limits (as sbatch reads them). ``flag`` names the
    option in the error."""
    cleaned = str(text).strip().lower()
    try:
        if ":" in cleaned or re.fullmatch(r"\d+-\d+(:\d+){0,2}", cleaned):
            days, _, clock = cleaned.rpartition("-")
            parts = [int(p) for p in clock.split(":")]
            hours, minutes, seconds = ([0] * (3 - len(parts)) + parts)[-3:]
            total = int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds
        else:
            scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(cleaned[-1:])
            number = cleaned[:-1] if scale is not None else cleaned
            total = float(number) * (scale or bare_unit_s)
    except ValueError:
        bare = "90 (minutes)" if bare_unit_s == 60 else "900 (seconds)"
        raise ValueError(
            f"{flag} {text!r}: expected a duration such as 90s, 25m, 4h, 1d, 2:30:00, "
            f"1-12:00:00 or {bare}"
        ) from None
    if not total > 0:
        raise ValueError(f"{flag} {text!r}: must be positive")
    return float(total)


def format_duration(seconds: float) -> str:
    for unit, size in (("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.0f} seconds"


# -- what the machine has ----------------------------------------------------------------------
def default_workers(cells: int) -> int:
    return max(1, min(cells, available_cores()))


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def threads_per_worker(workers: int) -> int:
    return max(1, available_cores() // workers)
