"""Incremental replay checkpoints: the frames and transitions new since the last checkpoint go to
one chunk file each time; the checkpoint itself holds only the list of chunks it relies on.

A chunk is written atomically (temporary file, then rename) and never modified. Files are deleted
only by :meth:`ChunkStore.collect`, which the caller runs once the checkpoint that no longer needs
them is in place: a crash at any point leaves the previous checkpoint's chunks intact. Each record
keeps the chunk's size and CRC-32, so a missing, truncated or altered file is an error naming it.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from typing import Any

import torch

from benchmark.atomic import atomic_write

CHUNK_GLOB = "chunk-*.pt"


class ChunkError(RuntimeError):
    """A chunk a checkpoint relies on is missing or does not hold what was written."""


def chunk_name(frames: tuple[int, int], transitions: tuple[int, int]) -> str:
    """Named by what it holds: a re-run that writes the same range replaces it atomically."""
    return (
        f"chunk-f{frames[0]:012d}-{frames[1]:012d}-t{transitions[0]:012d}-{transitions[1]:012d}.pt"
    )


class ChunkStore:
    """A folder of chunk files and the records of the ones the latest checkpoint relies on.

    ``records`` are plain dicts ``{"file", "frames", "transitions", "bytes", "crc32"}`` (ranges
    are ``[first, end)`` global indices), small enough to live in the checkpoint itself.
    """

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        for leftover in self.folder.glob(".*.tmp"):  # half-written chunks of a killed attempt
            leftover.unlink()
        self.records: list[dict[str, Any]] = []
        # Global frame / transition counts already on disk: the next chunk starts there.
        self.saved_frames = self.saved_transitions = 0

    def write(self, chunk: dict[str, Any]) -> dict[str, Any]:
        """Write one chunk (``frames``/``transitions`` ranges and CPU tensors); return its record."""
        buffer = io.BytesIO()
        torch.save(chunk, buffer)
        payload = buffer.getbuffer()
        name = chunk_name(tuple(chunk["frames"]), tuple(chunk["transitions"]))
        atomic_write(self.folder / name, lambda file: file.write(payload))
        record = {
            "file": name,
            "frames": list(chunk["frames"]),
            "transitions": list(chunk["transitions"]),
            "bytes": len(payload),
            "crc32": zlib.crc32(payload),
        }
        payload.release()
        self.records.append(record)
        return record

    def read(self, record: dict[str, Any]) -> dict[str, Any]:
        path = self.folder / record["file"]
        if not path.is_file():
            raise ChunkError(f"replay chunk {path} is missing (the checkpoint relies on it)")
        payload = path.read_bytes()
        if len(payload) != record["bytes"] or zlib.crc32(payload) != record["crc32"]:
            raise ChunkError(
                f"replay chunk {path} is corrupt: {len(payload)} bytes, CRC-32 "
                f"{zlib.crc32(payload)}; the checkpoint expects {record['bytes']} bytes, "
                f"CRC-32 {record['crc32']}"
            )
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)

    def keep_only(self, first_frame: int, first_transition: int) -> list[dict[str, Any]]:
        """Drop records whose frames and transitions are all older than the live ones."""
        self.records = [
            r
            for r in self.records
            if r["frames"][1] > first_frame or r["transitions"][1] > first_transition
        ]
        return [dict(r) for r in self.records]

    def collect(self) -> list[Path]:
        """Delete every chunk file the current records do not name (overwritten or orphaned).

        Call only after the checkpoint holding the current records is in place.
        """
        keep = {r["file"] for r in self.records}
        deleted = [p for p in self.folder.glob(CHUNK_GLOB) if p.name not in keep]
        for path in deleted:
            path.unlink(missing_ok=True)
        return deleted
