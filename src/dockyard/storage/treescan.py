"""Walk a directory tree into the entries of a layer tar, in a reproducible order.

Children are visited in byte order of their names, each directory before its content, so
the same tree always yields the same entry sequence.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .treewriter import OPAQUE_XATTR

WHITEOUT_PREFIX = b".wh."
OPAQUE_MARKER = b".wh..wh..opq"
# Host-specific or overlay-internal attributes that do not belong in a layer.
_SKIPPED_XATTRS = ("trusted.overlay.", "user.overlay.", "security.selinux")


@dataclass
class ScanEntry:
    rel: bytes  # path inside the tree, no leading slash
    st: os.stat_result | None  # None for a deletion without an on-disk whiteout
    kind: str = "file"  # "file" (any real entry), "whiteout" (rel was deleted), "opaque"
    link: bytes = b""
    xattrs: dict[str, bytes] = field(default_factory=dict)
    path: bytes = b""  # absolute path on disk, to read the content from


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: bytes) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def read_xattrs(path: bytes) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    result = {}
    for name in sorted(names):
        if name.startswith(_SKIPPED_XATTRS):
            continue
        try:
            result[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue  # removed meanwhile
    return result


def entry_at(root: bytes, rel: bytes) -> ScanEntry:
    """The ScanEntry of one path of a tree, as `walk` would give it."""
    path = root + b"/" + rel if rel else root
    st = os.stat(path, follow_symlinks=False)
    link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else b""
    return ScanEntry(rel, st, link=link, xattrs=read_xattrs(path), path=path)


def walk(root: Path, rel: bytes = b"") -> Iterator[ScanEntry]:
    """Every entry under root/rel (not rel itself), sockets excepted: tar cannot hold them."""
    base = os.fsencode(root)
    top = base + b"/" + rel if rel else base
    with os.scandir(top) as it:
        names = sorted(e.name for e in it)
    for name in names:
        child = rel + b"/" + name if rel else name
        try:
            entry = entry_at(base, child)
        except FileNotFoundError:
            continue  # removed while walking a live tree
        assert entry.st is not None
        if stat.S_ISSOCK(entry.st.st_mode):
            continue
        yield entry
        if stat.S_ISDIR(entry.st.st_mode):
            yield from walk(root, child)


def overlay_changes(upper: Path) -> Iterator[ScanEntry]:
    """The entries of an overlay upper directory, whiteouts and opaque flags as markers."""
    for entry in walk(upper):
        assert entry.st is not None
        if is_whiteout(entry.st):
            entry.kind = "whiteout"
        yield entry
        if stat.S_ISDIR(entry.st.st_mode) and is_opaque(entry.path):
            yield ScanEntry(entry.rel, entry.st, kind="opaque")
