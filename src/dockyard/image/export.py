"""`docker export`: a container's merged root filesystem as one plain tar stream."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import BinaryIO

from ..storage.archive import write_tree
from ..storage.snapshot import Snapshotter


def export_snapshot(snapshots: Snapshotter, key: str, out: BinaryIO, scratch: Path) -> None:
    """Write the merged view of snapshot `key` (image layers plus the container's changes)
    to `out`: mounted read-only on a private directory in `scratch`, so it works whether or
    not the container runs, and unmounted whatever happens."""
    with tempfile.TemporaryDirectory(dir=scratch, prefix="export-") as tmp:
        target = Path(tmp) / "rootfs"
        target.mkdir()
        snapshots.mount(key, target, readonly=True)
        try:
            write_tree(target, out)
        finally:
            snapshots.unmount(target)
