"""Re-render a dataset under a visual variant from its stored physics states (no stepping).

``python -m benchmark.datasets rerender <id> --variant <name> [--seed N]`` sets each stored
physics state in the variant's evaluation environment (:func:`benchmark.data.envs.make_walker_variant`)
and renders it. The new dataset (``<name>-<variant>[-s<seed>]-v<n>``) keeps the source's actions,
rewards, terminations, truncations, states, physics states and episode boundaries: their digests
are compared with the source's before the dataset is published, and a mismatch publishes
nothing. Frames are stored lossless in the builds' zstd Arrow storage; episodes are rendered in
worker processes, written as they come, under a staging root renamed into place at the end.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from benchmark.data.envs import ensure_headless_gl, make_walker_variant
from benchmark.data.variants import (
    DEFAULT,
    VARIANTS,
    Variant,
    VariantError,
    appearance,
    check_seed,
    get_variant,
)
from benchmark.datasets.build import (
    DEFAULT_TIME_LIMIT_S,
    create_lossless,
    episode_buffer,
    run_in_workers,
    staged_dataset,
    zstd_arrow_writes,
)
from benchmark.datasets.collect import EpisodeArrays
from benchmark.datasets.store import (
    METADATA_KEY,
    DatasetError,
    Digester,
    build_record,
    dataset_dir,
    digest_episodes,
    episode_arrays,
    folder_bytes,
    is_built,
    load_or_explain,
)

EXACT_KEYS = ("actions", "rewards", "terminations", "truncations", "state", "physics")
RERENDER_KEY = "vorb_variant"  # the variant record inside Minari's metadata.json

# Per-process cache: a worker makes each variant's environment once, not per episode.
_ENVS: dict[tuple[str, int], Any] = {}


@dataclasses.dataclass(frozen=True)
class RerenderTask:
    """One source episode without its frames: the worker renders them from ``physics``."""

    variant: str
    seed: int
    episode: EpisodeArrays  # pixels empty


def variant_env(variant: str, seed: int) -> Any:
    """The variant's evaluation environment (cached per process)."""
    if (variant, seed) not in _ENVS:
        _ENVS[variant, seed] = make_walker_variant(variant, seed)
    return _ENVS[variant, seed]


def render_states(env: Any, physics_states: np.ndarray) -> np.ndarray:
    """Set each physics state (no stepping) and render it: (T, H, W, 3) uint8."""
    frames = []
    for state in physics_states:
        env.set_physics_state(state)
        frames.append(env.render())
    return np.stack(frames)


def rerender_episode(task: RerenderTask) -> EpisodeArrays:
    env = variant_env(task.variant, task.seed)
    pixels = render_states(env, task.episode.physics)
    return dataclasses.replace(task.episode, pixels=pixels)


def variant_dataset_id(source_id: str, variant: Variant, seed: int) -> str:
    """``vorb/walker-walk/random-v0`` + colours, seed 3 -> ``vorb/walker-walk/random-colours-s3-v0``."""
    stem, version = source_id.rsplit("-v", 1)
    suffix = f"-s{seed}" if variant.seeded else ""
    return f"{stem}-{variant.name}{suffix}-v{version}"


def resolve(variant_name: str, seed: Any) -> tuple[Variant, int]:
    """The variant and its checked seed; a seed given to a variant that draws nothing is an error."""
    variant, seed = get_variant(variant_name), check_seed(seed)
    if not variant.seeded and seed != 0:
        raise VariantError(
            f"variant {variant.name!r} draws nothing from a seed (got {seed}); seeded variants: "
            + ", ".join(v.name for v in VARIANTS.values() if v.seeded)
        )
    return variant, seed


def _source_episodes(dataset: Any, digester: Digester) -> Iterator[EpisodeArrays]:
    """The source's episodes (frames dropped) with their reset seeds; digests fed on the way."""
    seeds = [
        meta.get("seed") for meta in dataset.storage.get_episode_metadata(dataset.episode_indices)
    ]
    for episode, seed in zip(dataset.iterate_episodes(), seeds, strict=True):
        arrays = episode_arrays(episode)
        digester.update(arrays)
        fields = {key: arrays[key] for key in EXACT_KEYS}
        yield EpisodeArrays(
            index=int(episode.id),
            reset_seed=-1 if seed is None else int(seed),
            pixels=np.empty((0,), np.uint8),
            **fields,
        )


def _time_limit(dataset: Any) -> float:
    spec = dataset.spec.env_spec
    return (
        float(spec.kwargs.get("time_limit_s", DEFAULT_TIME_LIMIT_S))
        if spec
        else DEFAULT_TIME_LIMIT_S
    )


def _env_spec(variant: Variant, seed: int, time_limit_s: float) -> Any:
    spec = gym.spec(variant.env_id)
    kwargs = {**spec.kwargs, "time_limit_s": time_limit_s}
    if variant.name != DEFAULT:
        kwargs["variant_seed"] = seed
    return dataclasses.replace(spec, kwargs=kwargs)


def _write(
    source: Any, target_id: str, spec: Any, episodes: Iterable[EpisodeArrays], bar: tqdm
) -> Any:
    metadata = source.storage.metadata
    dataset = None
    with zstd_arrow_writes():
        for episode_id, episode in enumerate(episodes):
            buffer = episode_buffer(episode, episode_id)
            if dataset is None:
                dataset = create_lossless(
                    target_id,
                    [buffer],
                    spec,
                    algorithm_name=metadata.get("algorithm_name"),
                    author=set(metadata.get("author", [])) or None,
                    ref_min_score=metadata.get("ref_min_score"),
                    ref_max_score=metadata.get("ref_max_score"),
                    description=f"{metadata.get('description', '')} Re-rendered: {spec.id}.",
                )
            else:
                dataset.update_dataset_from_buffer([buffer])
            bar.update(len(episode) + 1)
    if dataset is None:
        raise DatasetError(f"{source.id} has no episodes to re-render")
    return dataset


def _check_identical(source_id: str, expected: dict[str, str], written: dict[str, str]) -> None:
    changed = [key for key in EXACT_KEYS if expected[key] != written[key]]
    if changed:
        raise DatasetError(
            f"re-rendering {source_id} changed {', '.join(changed)} (digests differ); "
            "nothing was published"
        )


def rerender_dataset(
    source_id: str,
    variant_name: str,
    *,
    seed: int = 0,
    workers: int | None = None,
    target_id: str | None = None,
    progress: bool = True,
) -> Any:
    """Re-render ``source_id`` under a variant and return the new dataset (loaded).

    An already built target is loaded, not re-rendered (delete it, or use the CLI's ``--force``).
    """

    variant, seed = resolve(variant_name, seed)
    source = load_or_explain(source_id)
    target_id = target_id or variant_dataset_id(source_id, variant, seed)
    if target_id == source_id:
        raise ValueError(f"a re-rendered dataset needs its own id, not its source's {source_id!r}")
    if is_built(target_id):
        return load_or_explain(target_id)
    ensure_headless_gl()  # chosen once; spawned workers inherit MUJOCO_GL
    workers = workers or os.cpu_count() or 1
    spec = _env_spec(variant, seed, _time_limit(source))
    source_digests = Digester()
    tasks = (RerenderTask(variant.name, seed, e) for e in _source_episodes(source, source_digests))
    frames = source.total_steps + source.total_episodes
    start = time.perf_counter()
    with (
        staged_dataset(target_id),
        tqdm(total=frames, unit="frame", desc=target_id, disable=not progress) as bar,
    ):
        dataset = _write(
            source, target_id, spec, run_in_workers(tasks, workers, rerender_episode), bar
        )
        seconds = time.perf_counter() - start
        written = digest_episodes(dataset.iterate_episodes())  # read back what was stored
        expected = source_digests.hexdigests()
        _check_identical(source_id, expected, written)
        record = _record(source, variant, seed, written, seconds, workers, target_id)
        dataset.storage.update_metadata(record)
    return load_or_explain(target_id)


def _record(
    source: Any,
    variant: Variant,
    seed: int,
    digests: dict[str, str],
    seconds: float,
    workers: int,
    target_id: str,
) -> dict[str, Any]:
    source_record = build_record(source)
    frames = source.total_steps + source.total_episodes
    variant_record = {
        "source": source.id,
        "variant": variant.name,
        "description": variant.description,
        "seed": seed,
        "env_id": variant.env_id,
        "image_size": variant.image_size,
        "camera_id": variant.camera_id,
        "appearance": appearance(variant, seed),  # what the env drew, by the same function
        "source_digests": {key: source_record.get("digests", {}).get(key) for key in EXACT_KEYS},
    }
    stats = {
        **source_record.get("stats", {}),
        "rerender_seconds": round(seconds, 2),
        "frames_per_s": round(frames / max(seconds, 1e-9), 1),
        "bytes_on_disk": folder_bytes(dataset_dir(target_id)),
    }
    build = {**source_record, "digests": digests, "stats": stats, "workers": workers}
    return {METADATA_KEY: build, RERENDER_KEY: variant_record}


def variant_record(dataset: Any) -> dict[str, Any]:
    """The variant a dataset was re-rendered with (empty for a recipe build)."""
    return dict(dataset.storage.metadata.get(RERENDER_KEY, {}))
