"""Overlay snapshotter: lowerdirs are the image's layer directories, shared by all."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from . import mounts
from .archive import LayerDigests, write_diff
from .changes import upper_changes
from .lowerview import LowerView
from .snapshotbase import BaseSnapshotter


class OverlaySnapshotter(BaseSnapshotter):
    """<root>/<key>/upper and work; mounts use the layer store's short links."""

    name = "overlay2"

    def _populate(self, scratch: Path, parent: str | None) -> None:
        upper = scratch / "upper"
        upper.mkdir(0o755)
        (scratch / "work").mkdir(0o700)
        if parent is not None:
            # The merged root takes its owner and mode from the upper root: use the image's.
            st = self.layers.get(parent).path.stat()
            os.chown(upper, st.st_uid, st.st_gid)
            os.chmod(upper, st.st_mode & 0o7777)

    def mount(self, key: str, target: Path, readonly: bool = False) -> None:
        path = self._dir(key)
        parent = self.parent(key)
        if parent is None:
            empty = self.root / ".empty"
            empty.mkdir(exist_ok=True)
            lowers = [str(empty)]
        else:
            lowers = self.layers.lower_links(parent)
        mounts.mount_overlay(
            lowers, path / "upper", path / "work", Path(target), readonly, self.layers.root
        )

    def upper(self, key: str) -> Path:
        return self._dir(key) / "upper"

    def diff(self, key: str, out: BinaryIO, compression: str | None = "gzip") -> LayerDigests:
        return write_diff(self.upper(key), out, compression)

    def _in_use(self, path: Path) -> bool:
        return mounts.overlay_in_use(path / "upper")

    def _changes(self, path: Path, lower: LowerView) -> list[tuple[bytes, int]]:
        return upper_changes(path / "upper", lower)
