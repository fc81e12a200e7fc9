"""What every snapshotter shares: keys, atomic creation, removal, changes, diff."""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import BinaryIO

from . import mounts
from .archive import LayerDigests
from .changes import as_docker
from .errors import AlreadyExists, InUse, InvalidDigest, NotFound, StorageError
from .fsutil import fsync_dir, remove_stale, scratch_dir
from .layers import LayerStore
from .lowerview import LowerView

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_PARENT = "parent"


class BaseSnapshotter(ABC):
    """Snapshots under <root>/<key>/: a `parent` file (top chain ID) plus the driver's dirs."""

    name = ""

    def __init__(self, root: Path, layers: LayerStore) -> None:
        self.root = Path(root)
        self.layers = layers
        self._tmp = self.root / ".tmp"  # keys start with an alphanumeric: no clash
        self._tmp.mkdir(parents=True, exist_ok=True)

    def _dir(self, key: str, exists: bool = True) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise StorageError(f"invalid snapshot key {key!r}")
        path = self.root / key
        if exists and not (path / _PARENT).is_file():
            raise NotFound(f"snapshot {key} not found")
        return path

    def prepare(self, key: str, parent: str | None) -> None:
        """A new writable snapshot on top of layer `parent` (None: an empty one)."""
        path = self._dir(key, exists=False)
        if path.exists():
            raise AlreadyExists(f"snapshot {key} already exists")
        if parent is not None:
            try:
                self.layers.get(parent)
            except InvalidDigest:
                raise NotFound(f"layer {parent!r} not found") from None
        with scratch_dir(self._tmp) as scratch:
            (scratch / _PARENT).write_text(parent or "")
            self._populate(scratch, parent)
            try:
                os.rename(scratch, path)
            except OSError:
                if path.exists():
                    raise AlreadyExists(f"snapshot {key} already exists") from None
                raise
            fsync_dir(self.root)

    def parent(self, key: str) -> str | None:
        return (self._dir(key) / _PARENT).read_text() or None

    def keys(self) -> list[str]:
        return sorted(
            name
            for name in os.listdir(self.root)
            if _KEY.fullmatch(name) and (self.root / name / _PARENT).is_file()
        )

    def remove(self, key: str) -> None:
        path = self._dir(key)
        if self._in_use(path):
            raise InUse(f"snapshot {key} is mounted")
        with scratch_dir(self._tmp) as scratch:
            os.rename(path, scratch / "snapshot")  # gone at once, deleted with the scratch
            fsync_dir(self.root)

    def unmount(self, target: Path) -> None:
        mounts.unmount(target)

    def changes(self, key: str) -> list[tuple[str, int]]:
        """`docker diff`: (path, kind) with kind 0 modified, 1 added, 2 deleted."""
        return as_docker(self._changes(self._dir(key), self._lower(key)))

    def clean(self, min_age: float = 10.0) -> int:
        """Remove leftovers of interrupted prepares and removals."""
        return remove_stale(self._tmp, min_age)

    def _lower(self, key: str) -> LowerView:
        return LowerView(self.layers.lower_dirs(self.parent(key)))

    # -- per driver -----------------------------------------------------------------------

    @abstractmethod
    def _populate(self, scratch: Path, parent: str | None) -> None:
        """Each driver has its own."""

    @abstractmethod
    def _in_use(self, path: Path) -> bool:
        """Each driver has its own."""

    @abstractmethod
    def _changes(self, path: Path, lower: LowerView) -> list[tuple[bytes, int]]:
        """Each driver has its own."""

    @abstractmethod
    def mount(self, key: str, target: Path, readonly: bool = False) -> None:
        """Each driver has its own."""

    @abstractmethod
    def upper(self, key: str) -> Path:
        """Each driver has its own."""

    @abstractmethod
    def diff(self, key: str, out: BinaryIO, compression: str | None = "gzip") -> LayerDigests:
        """Each driver has its own."""
