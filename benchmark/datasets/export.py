"""Export a VORB dataset for other readers: Minari hdf5 (torchrl), V-D4RL folders, d3rlpy.

``python -m benchmark.datasets export <id> --format <name>``; :data:`FORMATS` lists the formats.
Every export is lossless (frames, actions, rewards, flags bit for bit) and atomic: it is written
in a temporary folder or file next to its destination and renamed into place when complete.

- ``minari-hdf5``: a Minari dataset under its own id (default: ``<name>-hdf5-v<N>``) in Minari's
  hdf5 backend, frames raw (Minari would JPEG-encode them by default). torchrl's
  ``MinariExperienceReplay(<id>, batch_size, load_from_local_minari=True)`` reads it (torchrl
  reads only ``data/main_data.hdf5``, not the zstd Arrow files VORB builds); use
  :func:`torchrl_replay`, which works around a torchrl bug that zeroes the data.
- ``vd4rl``: V-D4RL's layout, a folder of hdf5 files (``000000.hdf5``, ... in episode order,
  :data:`VD4RL_EPISODES_PER_FILE` episodes each) with ``observation`` uint8 (T, 3, 84, 84),
  ``action`` float32, ``reward`` float32, ``discount`` float32, ``step_type`` uint8 (0 first,
  1 mid, 2 last), gzip-compressed as V-D4RL's own files. One row per *observation*, dm_env style:
  an episode of T transitions has T + 1 rows; row 0 holds the reset frame with a zero action,
  reward 0 and discount 1 (V-D4RL's loader ignores them), row t >= 1 holds frame t with the
  action and reward of the step that led to it, and discount 0 only after a true termination.
  V-D4RL's ``load_offline_dataset_into_buffer(folder, buffer, frame_stack, size)`` reads it.
- ``d3rlpy``: an ``MDPDataset`` (:func:`to_d3rlpy`) dumped with d3rlpy's own ``dump`` into
  ``<folder>/dataset.h5``; load it with ``ReplayBuffer.load(f, InfiniteBuffer(), transition_picker=FrameStackTransitionPicker(3))``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from benchmark.datasets.build import ensure_namespace
from benchmark.datasets.store import (
    METADATA_KEY,
    STAGING_DIR,
    build_record,
    dataset_dir,
    datasets_root,
    load_or_explain,
)

if TYPE_CHECKING:  # d4rl imports torch (through the sampler): the CLI's --help stays fast
    from benchmark.datasets.d4rl import FrameIndexedDataset
VD4RL_EPISODES_PER_FILE = 10  # V-D4RL's loader reads a whole file at a time: keep files small
MINARI_CHUNK_EPISODES = 4  # episodes handed to Minari per write call (bounded memory)
EXPORTS_DIR = Path("exports")  # default destination of file exports, relative to the caller


# -- atomic folders --------------------------------------------------------------------------
@contextlib.contextmanager
def staged_folder(final: Path, force: bool, staging_parent: Path | None = None) -> Iterator[Path]:
    """Yield an empty temporary folder that replaces ``final`` when the block completes."""
    final = Path(final)
    if final.exists() and not force:
        raise FileExistsError(f"{final} exists; pass force=True (CLI: --force) to replace it")
    parent = staging_parent or final.parent
    parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(dir=parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        yield staged
        final.parent.mkdir(parents=True, exist_ok=True)
        _replace_folder(staged, final)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _replace_folder(staged: Path, final: Path) -> None:
    if not final.exists():
        os.replace(staged, final)
        return
    # --force: move the old folder aside first, so a crash leaves the old or the new one.
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    os.replace(final, old)
    os.replace(staged, final)
    shutil.rmtree(old)


# -- minari-hdf5 -----------------------------------------------------------------------------
def hdf5_id(dataset_id: str) -> str:
    """The default id of a dataset's hdf5 copy: ``vorb/walker-walk/expert-v0`` ->
    ``vorb/walker-walk/expert-hdf5-v0``."""
    stem, version = dataset_id.rsplit("-v", 1)
    return f"{stem}-hdf5-v{version}"


def _copied_metadata(source: Any, target_id: str, written: set[str]) -> dict[str, Any]:
    """The source's metadata for the copy: everything Minari does not compute itself."""
    from minari.dataset.minari_storage import MinariStorage

    raw = MinariStorage.read_raw_metadata(source.storage.data_path)
    skip = written | {"total_episodes", "total_steps", "dataset_size", "data_format"}
    metadata = {k: v for k, v in raw.items() if k not in skip}
    for key in ("author", "author_email"):  # Minari stores sets as lists and wants sets back
        if key in metadata:
            metadata[key] = set(metadata[key])
    metadata["dataset_id"] = target_id
    metadata[METADATA_KEY] = dict(raw.get(METADATA_KEY, {})) | {
        "exported_from": source.spec.dataset_id,
        "export_format": "minari-hdf5",
    }
    return metadata


def _copy_episodes(source: Any, target: Any, progress: bool) -> None:
    from minari.data_collector import EpisodeBuffer

    total = source.storage.total_episodes
    with tqdm(total=total, unit="episode", desc="minari-hdf5", disable=not progress) as bar:
        for first in range(0, total, MINARI_CHUNK_EPISODES):
            ids = list(range(first, min(first + MINARI_CHUNK_EPISODES, total)))
            metadata = source.storage.get_episode_metadata(ids)
            episodes = source.storage.get_episodes(ids)
            target.update_episodes(
                [
                    EpisodeBuffer(
                        id=episode["id"],
                        seed=meta.get("seed"),
                        options=meta.get("options"),
                        observations=episode["observations"],
                        actions=episode["actions"],
                        rewards=episode["rewards"],
                        terminations=episode["terminations"],
                        truncations=episode["truncations"],
                        infos=episode.get("infos") or None,
                    )
                    for episode, meta in zip(episodes, metadata, strict=True)
                ]
            )
            bar.update(len(ids))


def export_minari_hdf5(
    dataset_id: str, target_id: str | None = None, force: bool = False, progress: bool = True
) -> Path:
    """Copy ``dataset_id`` into Minari's hdf5 backend (raw frames) under ``target_id``."""
    from minari.dataset.minari_dataset import parse_dataset_id
    from minari.dataset.minari_storage import MinariStorage

    target_id = target_id or hdf5_id(dataset_id)
    if target_id == dataset_id:
        raise ValueError(f"the hdf5 copy needs an id of its own, not the source's {dataset_id!r}")
    parse_dataset_id(target_id)  # a malformed id fails here, with Minari's explanation
    source = load_or_explain(dataset_id)
    ensure_namespace(target_id)
    staging = datasets_root() / STAGING_DIR
    with staged_folder(dataset_dir(target_id), force, staging_parent=staging) as staged:
        target = MinariStorage.new(
            staged / "data",
            observation_space=source.observation_space,
            action_space=source.action_space,
            env_spec=source.spec.env_spec,
            data_format="hdf5",
            jpeg_encoding=False,  # lossless: Minari JPEG-encodes uint8 images by default
        )
        written = set(MinariStorage.read_raw_metadata(staged / "data"))
        _copy_episodes(source, target, progress)
        target.update_metadata(_copied_metadata(source, target_id, written))
        target.update_metadata({"dataset_size": target.get_size()})
    return dataset_dir(target_id)


def torchrl_replay(hdf5_dataset_id: str, batch_size: int, **kwargs: Any) -> Any:
    """torchrl's ``MinariExperienceReplay`` of an hdf5 export, with torchrl's data intact.

    torchrl 0.11 to 0.14.1 fill the dataset in memory and then call tensordict's
    ``memmap_like``, which makes a *contentless* copy: every frame, action and reward it returns is
    zero, for any Minari dataset (``tests/test_export.py`` checks that this is still so). During
    construction this calls ``memmap`` instead, which copies the contents; correct for torchrl
    versions that fill after memory-mapping too. ``kwargs`` go to ``MinariExperienceReplay``
    (``root=``, ``sampler=``, ...); ``load_from_local_minari`` is set.
    """
    from tensordict import TensorDict
    from torchrl.data.datasets.minari_data import MinariExperienceReplay

    original = TensorDict.memmap_like
    TensorDict.memmap_like = TensorDict.memmap  # type: ignore[method-assign]
    try:
        return MinariExperienceReplay(
            hdf5_dataset_id, batch_size, load_from_local_minari=True, **kwargs
        )
    finally:
        TensorDict.memmap_like = original  # type: ignore[method-assign]


# -- vd4rl -----------------------------------------------------------------------------------
def vd4rl_episode(episode: Any) -> dict[str, np.ndarray]:
    """One Minari episode as V-D4RL rows (see the module docstring for the convention)."""
    steps = len(episode.actions)
    actions = np.asarray(episode.actions, dtype=np.float32)
    step_type = np.ones(steps + 1, dtype=np.uint8)
    step_type[0], step_type[-1] = 0, 2
    return {
        "observation": np.ascontiguousarray(episode.observations["pixels"].transpose(0, 3, 1, 2)),
        "action": np.concatenate([np.zeros((1, *actions.shape[1:]), np.float32), actions]),
        "reward": np.concatenate([[0.0], episode.rewards]).astype(np.float32),
        "discount": np.concatenate([[1.0], 1.0 - episode.terminations]).astype(np.float32),
        "step_type": step_type,
    }


def _write_vd4rl_file(path: Path, episodes: list[dict[str, np.ndarray]]) -> None:
    import h5py

    with h5py.File(path, "w") as file:
        for key in episodes[0]:
            file.create_dataset(
                key, data=np.concatenate([e[key] for e in episodes]), compression="gzip"
            )


def export_vd4rl(
    dataset_id: str,
    out: Path | str | None = None,
    force: bool = False,
    progress: bool = True,
    episodes_per_file: int = VD4RL_EPISODES_PER_FILE,
) -> Path:
    """Write ``dataset_id`` as a V-D4RL folder of hdf5 files (default ``exports/vd4rl/<id>``)."""
    if episodes_per_file < 1:
        raise ValueError(f"episodes_per_file must be positive, got {episodes_per_file}")
    source = load_or_explain(dataset_id)
    final = Path(out) if out is not None else EXPORTS_DIR / "vd4rl" / dataset_id
    with staged_folder(final, force) as staged:
        shard: list[dict[str, np.ndarray]] = []
        files = 0
        episodes = source.iterate_episodes()
        for episode in tqdm(
            episodes, total=source.total_episodes, desc="vd4rl", disable=not progress
        ):
            shard.append(vd4rl_episode(episode))
            if len(shard) == episodes_per_file:
                _write_vd4rl_file(staged / f"{files:06d}.hdf5", shard)
                shard, files = [], files + 1
        if shard:
            _write_vd4rl_file(staged / f"{files:06d}.hdf5", shard)
        _write_provenance(staged, dataset_id, "vd4rl")
    return final


def _write_provenance(folder: Path, dataset_id: str, format: str) -> None:
    """``vorb_export.json``: the source id and its build digests (readers ignore the file)."""
    record = build_record(load_or_explain(dataset_id))
    provenance = {"source": dataset_id, "format": format, "digests": record.get("digests", {})}
    (folder / "vorb_export.json").write_text(json.dumps(provenance, indent=2) + "\n")


# -- d3rlpy ----------------------------------------------------------------------------------
def d3rlpy_arrays(data: FrameIndexedDataset) -> dict[str, np.ndarray]:
    """MDPDataset's arrays: one row per frame, flags on each episode's last row.

    A time-limit episode of T transitions has T + 1 rows (its final frame is the last
    transition's next observation; that row's action and reward are zero and never used). A
    terminated episode has T rows: d3rlpy gives a terminal transition a zero next observation.
    """
    rows = data.frames.shape[0]
    obs_rows = data.observation_index[:, -1]  # frame row of each transition's observation
    ends = obs_rows[data.episode_ends]
    terminated = data.terminals[data.episode_ends]
    actions = np.zeros((rows, *data.actions.shape[1:]), dtype=np.float32)
    actions[obs_rows] = data.actions
    rewards = np.zeros(rows, dtype=np.float32)
    rewards[obs_rows] = data.rewards
    terminals = np.zeros(rows, dtype=np.float32)
    terminals[ends[terminated]] = 1.0
    timeouts = np.zeros(rows, dtype=np.float32)
    timeouts[ends[~terminated] + 1] = 1.0
    arrays = {
        "observations": data.frames,
        "actions": actions,
        "rewards": rewards,
        "terminals": terminals,
        "timeouts": timeouts,
    }
    if terminated.any():  # drop the final frames of terminated episodes (copies the frames)
        keep = np.ones(rows, dtype=bool)
        keep[ends[terminated] + 1] = False
        arrays = {key: value[keep] for key, value in arrays.items()}
    return arrays


def to_d3rlpy(dataset_id: str, frame_stack: int | None = None, progress: bool = False) -> Any:
    """A d3rlpy ``MDPDataset`` of ``dataset_id``: uint8 (3, 84, 84) frames, stacked by d3rlpy's
    ``FrameStackTransitionPicker(frame_stack)`` (default VORB's, ``benchmark.data.sampler.FRAME_STACK``).

    Note d3rlpy pads the stack with zero frames at an episode's start, where V-D4RL and VORB
    repeat the first frame; the frames, actions and rewards themselves are the dataset's.
    """
    from d3rlpy.constants import ActionSpace
    from d3rlpy.dataset import FrameStackTransitionPicker, MDPDataset

    from benchmark.data.sampler import FRAME_STACK  # late: torch, for the d3rlpy export only
    from benchmark.datasets.d4rl import load_frame_indexed

    frame_stack = FRAME_STACK if frame_stack is None else frame_stack
    data = load_frame_indexed(dataset_id, frame_stack, progress=progress)
    return MDPDataset(
        **d3rlpy_arrays(data),
        transition_picker=FrameStackTransitionPicker(frame_stack),
        action_space=ActionSpace.CONTINUOUS,
        action_size=data.actions.shape[1],
    )


D3RLPY_FILE = "dataset.h5"


def export_d3rlpy(
    dataset_id: str, out: Path | str | None = None, force: bool = False, progress: bool = True
) -> Path:
    """Dump :func:`to_d3rlpy`'s dataset with d3rlpy's ``dump`` into ``<out>/dataset.h5``
    (default ``exports/d3rlpy/<id>``)."""
    final = Path(out) if out is not None else EXPORTS_DIR / "d3rlpy" / dataset_id
    if final.exists() and not force:  # checked before the (long) conversion, and again below
        raise FileExistsError(f"{final} exists; pass force=True (CLI: --force) to replace it")
    dataset = to_d3rlpy(dataset_id, progress=progress)
    with staged_folder(final, force) as staged:
        with (staged / D3RLPY_FILE).open("w+b") as file:  # d3rlpy's h5py writer also reads
            dataset.dump(file)
        _write_provenance(staged, dataset_id, "d3rlpy")
    return final


# -- the registry ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportFormat:
    """An export format: what it is for and the function that writes it."""

    name: str
    reader: str
    write: Callable[..., Path]


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("minari-hdf5", "torchrl MinariExperienceReplay", export_minari_hdf5),
        ExportFormat("vd4rl", "V-D4RL load_offline_dataset_into_buffer", export_vd4rl),
        ExportFormat("d3rlpy", "d3rlpy ReplayBuffer.load", export_d3rlpy),
    )
}


def export_dataset(
    dataset_id: str,
    format: str,
    destination: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Export ``dataset_id`` in ``format``; ``destination`` is the target id for
    ``minari-hdf5`` and a path otherwise (``None``: the format's default). Returns where it went."""
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; valid formats: {', '.join(FORMATS)}")
    return FORMATS[format].write(dataset_id, destination, force=force, progress=progress)
