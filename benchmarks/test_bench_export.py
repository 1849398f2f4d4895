"""Export speed and size: ``bash scripts/bench.sh -k export`` (not part of the tests).

A 10,000-transition dataset: one real 500-step walker episode (random actions, rendered) tiled 20
times into a zstd Arrow dataset as VORB builds them (rendering 10,000 real frames would take
~7 minutes on this CPU). Each episode is stored in its own files, so compression sees no copy of
another episode and the sizes are those of real frames. For each format: export throughput
(transitions/s), next to reading the Arrow original into numpy measured in the same run, and
bytes on disk next to the Arrow original's.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmark.datasets import build_dataset, export
from benchmark.datasets.build import zstd_arrow_writes
from benchmark.datasets.store import dataset_dir, folder_bytes

RANDOM_ID = "vorb/walker-walk/random-v0"
EPISODE_ID = "vorb-bench/walker-walk/random-episode-v0"
TILED_ID = "vorb-bench/walker-walk/random-tiled-v0"
EPISODE_STEPS = 500  # the published walker episode
COPIES = 20  # 20 x 500 = 10,000 transitions
results: dict[str, dict[str, float]] = {}


def _tile(source_id: str, target_id: str, copies: int) -> None:
    """Write ``copies`` copies of ``source_id``'s episodes as a zstd Arrow Minari dataset."""
    import minari
    from minari.data_collector import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    source = minari.load_dataset(source_id)
    episode = next(source.iterate_episodes())
    (dataset_dir(target_id) / "data").mkdir(parents=True)
    with zstd_arrow_writes():
        storage = MinariStorage.new(
            dataset_dir(target_id) / "data",
            observation_space=source.observation_space,
            action_space=source.action_space,
            env_spec=source.spec.env_spec,
            data_format="arrow",
            jpeg_encoding=False,
        )
        for copy in range(copies):
            storage.update_episodes(
                [
                    EpisodeBuffer(
                        id=copy,
                        observations=episode.observations,
                        actions=episode.actions,
                        rewards=episode.rewards,
                        terminations=episode.terminations,
                        truncations=episode.truncations,
                    )
                ]
            )
    minari_version = source.storage.metadata["minari_version"]
    storage.update_metadata({"dataset_id": target_id, "minari_version": minari_version})


@pytest.fixture(scope="module")
def tiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("bench-export")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        build_dataset(
            RANDOM_ID, transitions=EPISODE_STEPS, workers=1, target_id=EPISODE_ID, progress=False
        )
        _tile(EPISODE_ID, TILED_ID, COPIES)
        # One-off imports are paid before timing: they are not export throughput.
        for module in ("h5py", "d3rlpy", "benchmark.datasets.d4rl"):
            importlib.import_module(module)
        yield root


def _read_rate() -> float:
    """Transitions/s of reading the Arrow original into numpy (frames, actions, rewards)."""
    import minari

    dataset = minari.load_dataset(TILED_ID)
    start = time.perf_counter()
    steps = sum(len(episode.actions) for episode in dataset.iterate_episodes())
    return steps / (time.perf_counter() - start)


@pytest.mark.parametrize("format", list(export.FORMATS))
def test_export_throughput_and_bytes(
    benchmark: Any, tiled: Path, tmp_path: Path, format: str
) -> None:
    transitions = EPISODE_STEPS * COPIES
    read_rate = _read_rate()
    arrow_bytes = folder_bytes(dataset_dir(TILED_ID))
    destination = None if format == "minari-hdf5" else tmp_path / format

    def run() -> Path:
        return export.export_dataset(TILED_ID, format, destination, force=True, progress=False)

    path = benchmark.pedantic(run, rounds=1, iterations=1)
    rate = transitions / benchmark.report.stats.stats.mean
    size = folder_bytes(path)
    results[format] = {"rate": rate, "bytes": size}
    benchmark.extra_info.update(
        transitions=transitions,
        export_transitions_per_s=rate,
        arrow_read_transitions_per_s=read_rate,
        rate_vs_arrow_read=rate / read_rate,
        bytes=size,
        arrow_bytes=arrow_bytes,
        bytes_vs_arrow=size / arrow_bytes,
        frames="one real 500-step episode tiled 20 times",
    )
    print(
        f"\n{format}: {rate:,.0f} transitions/s ({rate / read_rate:.2f}x reading the Arrow "
        f"original, {read_rate:,.0f}/s); {size / 1e6:,.1f} MB = {size / arrow_bytes:.2f}x the "
        f"Arrow original's {arrow_bytes / 1e6:,.1f} MB ({size / transitions:,.0f} bytes/transition)"
    )
