"""Minari remotes: ``download`` and ``publish`` go through ``minari.download_dataset`` and
``minari.upload_dataset``; the remote is ``MINARI_REMOTE`` (default ``hf://farama-minari``).

A ``file://<directory>`` remote type is added here, so a dataset can be published to and
downloaded from a plain folder (a shared drive, or an offline test). It registers a storage class
in ``minari.storage.remotes._registry``, a private name: minari is pinned (0.5.4) for that.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import minari
from minari.dataset.minari_storage import METADATA_FILE_NAME
from minari.storage.datasets_root_dir import get_dataset_path
from minari.storage.remotes import _registry
from minari.storage.remotes.cloud_storage import CloudStorage

FILE_SCHEME = "file"
_NAMESPACE_FILE = "namespace_metadata.json"  # minari's name for a namespace's metadata


class LocalDirectoryStorage(CloudStorage):
    """A remote that is a directory laid out like a Minari root."""

    def __init__(self, name: str, token: str | None = None) -> None:
        self.root = Path(name)
        if not self.root.is_dir():
            raise FileNotFoundError(f"remote directory {self.root} does not exist")

    def upload_dataset(self, dataset_id: str) -> None:
        _copy_tree_atomic(get_dataset_path(dataset_id), self.root / dataset_id)

    def list_datasets(self, prefix: str | None = None) -> Iterator[str]:
        for metadata in sorted(self.root.rglob(f"data/{METADATA_FILE_NAME}")):
            dataset_id = metadata.parent.parent.relative_to(self.root).as_posix()
            if not dataset_id.startswith(".") and dataset_id.startswith(prefix or ""):
                yield dataset_id

    def get_dataset_metadata(self, dataset_id: str) -> dict:
        return json.loads((self.root / dataset_id / "data" / METADATA_FILE_NAME).read_text())

    def download_dataset(self, dataset_id: str, path: Path) -> None:
        _copy_tree_atomic(self.root / dataset_id, Path(path) / dataset_id)

    def list_namespaces(self) -> Iterator[str]:
        for metadata in sorted(self.root.rglob(_NAMESPACE_FILE)):
            yield metadata.parent.relative_to(self.root).as_posix()

    def download_namespace_metadata(self, namespace: str, path: Path) -> None:
        target = Path(path) / namespace
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.root / namespace / _NAMESPACE_FILE, target / _NAMESPACE_FILE)

    def upload_namespace(self, namespace: str) -> None:
        target = self.root / namespace
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(get_dataset_path(namespace) / _NAMESPACE_FILE, target / _NAMESPACE_FILE)


def _copy_tree_atomic(source: Path, target: Path) -> None:
    """Copy a dataset folder to a temporary sibling, then rename: no half-copied dataset."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        shutil.copytree(source, temporary, dirs_exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def register_file_remote() -> None:
    """Make ``MINARI_REMOTE=file:///some/dir`` work (idempotent)."""
    _registry.setdefault(FILE_SCHEME, lambda: LocalDirectoryStorage)


def download(dataset_id: str, force: bool = False) -> None:
    """Download ``dataset_id`` from ``MINARI_REMOTE`` into the local Minari root."""

    register_file_remote()
    minari.download_dataset(dataset_id, force_download=force)


def publish(dataset_id: str, token: str | None = None) -> None:
    """Upload a local dataset to ``MINARI_REMOTE`` (hf: token is an API token)."""

    register_file_remote()
    minari.upload_dataset(dataset_id, token or os.environ.get("MINARI_TOKEN", ""))
