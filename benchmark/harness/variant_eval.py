"""Evaluation on visual variants: ``python -m benchmark.run --eval-variants colours,camera1``.

Cheap by design: each trained agent plays the evaluation protocol (same episodes, reset seeds and
deterministic actions) on every requested variant once, after its final evaluation, and the rows
go to a separate per-cell table, ``variants.csv`` next to ``evals.csv``. The report compares
them with the final score on the training variant (the generalisation gap).

Only variants of the training resolution are accepted: the agents' encoders are built for the
84x84 frames of the recipes' datasets, and resizing a 64px variant back up would evaluate the
resize as much as the agent. An item is ``name`` or ``name:seed`` (the appearance seed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import pandas as pd

from benchmark.atomic import atomic_write_text
from benchmark.data.variants import DEFAULT, VARIANTS, VariantError, parse_variant

VARIANTS_FILE = "variants.csv"
VARIANT_COLUMNS: dict[str, str] = {
    "algo": "string",
    "dataset": "string",
    "seed": "int64",
    "profile": "string",
    "update": "int64",
    "variant": "string",  # name, or name:seed for a seeded variant
    "return_mean": "float64",
    "return_std": "float64",
    "normalized_score": "float64",
}


@dataclass(frozen=True)
class VariantRow:
    """One agent evaluated on one variant (see :data:`VARIANT_COLUMNS`)."""

    algo: str
    dataset: str
    seed: int
    profile: str
    update: int
    variant: str
    return_mean: float
    return_std: float
    normalized_score: float


assert [f.name for f in fields(VariantRow)] == list(VARIANT_COLUMNS)  # one schema


def parse_eval_variants(text: str | None) -> tuple[str, ...]:
    """``"colours,camera1:0,background:3"`` -> canonical labels; a clear error otherwise."""
    if not text:
        return ()
    training = VARIANTS[DEFAULT]
    labels = []
    for item in (part for part in text.split(",") if part.strip()):
        variant, seed = parse_variant(item)
        if variant.image_size != training.image_size:
            same_size = [v.name for v in VARIANTS.values() if v.image_size == training.image_size]
            raise VariantError(
                f"--eval-variants: {variant.name!r} renders {variant.image_size}x"
                f"{variant.image_size} frames, but agents are trained on {training.image_size}x"
                f"{training.image_size} frames; evaluate only variants of the training "
                f"resolution: {', '.join(same_size)}"
            )
        labels.append(f"{variant.name}:{seed}" if variant.seeded else variant.name)
    if len(set(labels)) != len(labels):
        raise VariantError(f"--eval-variants repeats a variant: {text!r}")
    return tuple(labels)


def make_variant_env(label: str, time_limit_s: float) -> Any:
    """The registered evaluation env of a variant label (the caller closes it)."""

    variant, seed = parse_variant(label)
    kwargs = {"variant_seed": seed} if variant.name != DEFAULT else {}
    return gym.make(variant.env_id, time_limit_s=time_limit_s, **kwargs)


def evaluate_variants(run: Any) -> list[VariantRow]:
    """Play ``run``'s protocol on each of its task's variants; write the cell's variants.csv.

    ``run`` is the runner's cell state (agent, protocol, references, cell, paths).
    """
    from benchmark.harness.evaluation import evaluate  # late: torch stays out of --help

    cell, update, rows = run.task.cell, run.trainer.updates, []
    for label in run.task.eval_variants:
        env = make_variant_env(label, run.protocol.time_limit_s)
        try:
            result = evaluate(run.trainer.agent, env, run.protocol, run.references)
        finally:
            env.close()
        rows.append(
            VariantRow(
                algo=cell.algo,
                dataset=cell.dataset,
                seed=cell.seed,
                profile=cell.profile,
                update=update,
                variant=label,
                return_mean=result.mean,
                return_std=result.std,
                normalized_score=result.normalized_score,
            )
        )
    write_variant_rows(run.paths.folder / VARIANTS_FILE, rows)
    return rows


def write_variant_rows(path: Path, rows: list[VariantRow]) -> None:
    frame = pd.DataFrame([asdict(row) for row in rows], columns=list(VARIANT_COLUMNS))
    atomic_write_text(path, frame.astype(VARIANT_COLUMNS).to_csv(index=False))
