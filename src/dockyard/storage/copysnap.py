"""Copy snapshotter: each snapshot is a full, flattened copy of its image's layers.

For file systems where overlayfs does not work (the `vfs` driver of Docker). Layers are
replayed bottom-up through the same safe TreeWriter that applies archives, with whiteouts
deleting what they name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from . import mounts
from .archive import LayerDigests, write_entries
from .changes import change_entries, tree_changes
from .lowerview import LowerView
from .snapshotbase import BaseSnapshotter
from .treescan import ScanEntry, is_opaque, is_whiteout, walk
from .treewriter import Meta, TreeWriter

_SPECIAL = (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO)


class CopySnapshotter(BaseSnapshotter):
    """<root>/<key>/fs holds the whole tree; mounts are bind mounts of it."""

    name = "vfs"

    def _populate(self, scratch: Path, parent: str | None) -> None:
        fs = scratch / "fs"
        fs.mkdir(0o755)
        with TreeWriter(fs, whiteouts="delete") as writer:
            for layer_dir in reversed(self.layers.lower_dirs(parent)):
                replay(layer_dir, writer)

    def mount(self, key: str, target: Path, readonly: bool = False) -> None:
        mounts.bind_mount(self.upper(key), Path(target), readonly)

    def upper(self, key: str) -> Path:
        return self._dir(key) / "fs"

    def diff(self, key: str, out: BinaryIO, compression: str | None = "gzip") -> LayerDigests:
        fs = self.upper(key)
        changes = tree_changes(fs, self._lower(key))
        return write_entries(change_entries(fs, changes), out, compression)

    def _in_use(self, path: Path) -> bool:
        return mounts.bind_in_use(path / "fs")

    def _changes(self, path: Path, lower: LowerView) -> list[tuple[bytes, int]]:
        return tree_changes(path / "fs", lower)


def replay(layer_dir: Path, writer: TreeWriter) -> None:
    """Write one layer directory's entries (overlay whiteouts included) through `writer`."""
    if is_opaque(os.fsencode(layer_dir)):
        writer.opaque(b"")
    first_names: dict[tuple[int, int], bytes] = {}
    for entry in walk(layer_dir):
        _replay_entry(entry, writer, first_names)
    writer.finish()


def _replay_entry(
    entry: ScanEntry, writer: TreeWriter, first_names: dict[tuple[int, int], bytes]
) -> None:
    st = entry.st
    assert st is not None
    mode = stat.S_IFMT(st.st_mode)
    meta = Meta(st.st_mode & 0o7777, st.st_uid, st.st_gid, st.st_mtime_ns, entry.xattrs)
    if is_whiteout(st):
        writer.whiteout(entry.rel)
    elif mode == stat.S_IFDIR:
        writer.directory(entry.rel, meta)
        if is_opaque(entry.path):
            writer.opaque(entry.rel)
    elif mode == stat.S_IFLNK:
        writer.symlink(entry.rel, entry.link, meta)
    elif mode in _SPECIAL:
        writer.special(entry.rel, mode, meta, st.st_rdev)
    elif mode == stat.S_IFREG:
        first = first_names.setdefault((st.st_dev, st.st_ino), entry.rel)
        if first != entry.rel:
            writer.hardlink(entry.rel, first)
        else:
            writer.regular(entry.rel, meta, lambda fd: _copy_file(entry.path, fd, st.st_size))


def _copy_file(source: bytes, fd: int, size: int) -> None:
    src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        left = size
        while left > 0:
            copied = os.copy_file_range(src, fd, left)
            if copied == 0:
                break
            left -= copied
    finally:
        os.close(src)
