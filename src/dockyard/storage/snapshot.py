"""Snapshotters: a container's writable root filesystem on top of an image's layers."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Protocol

from .archive import LayerDigests
from .copysnap import CopySnapshotter
from .errors import StorageError
from .fsutil import scratch_dir
from .layers import LayerStore
from .mounts import overlay_works
from .overlay import OverlaySnapshotter

__all__ = ["CopySnapshotter", "OverlaySnapshotter", "Snapshotter", "choose_snapshotter"]

_DRIVERS = {"overlay2": OverlaySnapshotter, "overlay": OverlaySnapshotter}
_DRIVERS |= {"vfs": CopySnapshotter, "copy": CopySnapshotter}


class Snapshotter(Protocol):
    name: str
    root: Path

    def prepare(self, key: str, parent: str | None) -> None: ...
    def mount(self, key: str, target: Path, readonly: bool = False) -> None: ...
    def unmount(self, target: Path) -> None: ...
    def upper(self, key: str) -> Path: ...
    def remove(self, key: str) -> None: ...
    def keys(self) -> list[str]: ...
    def parent(self, key: str) -> str | None: ...
    def changes(self, key: str) -> list[tuple[str, int]]: ...
    def diff(self, key: str, out: BinaryIO, compression: str | None = "gzip") -> LayerDigests: ...
    def clean(self, min_age: float = 10.0) -> int: ...


def choose_snapshotter(root: Path, layers: LayerStore, driver: str | None = None) -> Snapshotter:
    """The snapshotter for `driver` ("overlay2"/"overlay", "vfs"/"copy"), or the best that
    works here: overlay if a test mount succeeds on `root`'s file system, else copies.

    Each driver keeps its snapshots in its own directory, <root>/<driver name>.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if driver is None:
        cls = OverlaySnapshotter if _overlay_works_in(root) else CopySnapshotter
    elif driver in _DRIVERS:
        cls = _DRIVERS[driver]
        if cls is OverlaySnapshotter and not _overlay_works_in(root):
            raise StorageError(f"overlayfs does not work on {root}")
    else:
        raise StorageError(f"unknown storage driver {driver!r}: use overlay2 or vfs")
    return cls(root / cls.name, layers)


def _overlay_works_in(root: Path) -> bool:
    with scratch_dir(root) as scratch:
        return overlay_works(scratch)
