"""Walk a directory tree into the entries of a layer tar, in a reproducible order.

Children are visited in byte order of their names, each directory before its content, so
the same tree always yields the same entry sequence. The walk goes from directory fd to
directory fd and never follows a symlink, so a tree that changes under it (a running
container's upper directory) cannot redirect it outside: a directory swapped for a
symlink is at worst skipped, never read through.
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
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class ScanEntry:
    """One entry of a tree; `dirfd` (its directory) is valid only until the walk moves on."""

    rel: bytes  # path inside the tree, no leading slash
    st: os.stat_result | None  # None for a deletion without an on-disk whiteout
    kind: str = "file"  # "file" (any real entry), "whiteout" (rel was deleted), "opaque"
    link: bytes = b""
    xattrs: dict[str, bytes] = field(default_factory=dict)
    dirfd: int = -1
    name: bytes = b""

    @property
    def path(self) -> bytes:
        """A path to the entry through its directory's fd; the last component not followed."""
        return b"/proc/self/fd/%d/%s" % (self.dirfd, self.name)


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


def walk(root: Path) -> Iterator[ScanEntry]:
    """Every entry under root (not root itself), sockets excepted: tar cannot hold them."""
    top = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    stack = [(top, b"", iter(_names(top)))]
    try:
        while stack:
            dirfd, rel, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(dirfd)
                stack.pop()
                continue
            entry = _entry(dirfd, rel + b"/" + name if rel else name, name)
            if entry is None:
                continue
            yield entry
            if stat.S_ISDIR(entry.st.st_mode):  # type: ignore[union-attr]
                try:
                    sub = os.open(name, _DIR_FLAGS, dir_fd=dirfd)
                except OSError:
                    continue  # removed or replaced meanwhile
                stack.append((sub, entry.rel, iter(_names(sub))))
    finally:
        for dirfd, _, _ in stack:
            os.close(dirfd)


def _names(dirfd: int) -> list[bytes]:
    return sorted(os.fsencode(name) for name in os.listdir(dirfd))


def _entry(dirfd: int, rel: bytes, name: bytes) -> ScanEntry | None:
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        link = os.readlink(name, dir_fd=dirfd) if stat.S_ISLNK(st.st_mode) else b""
    except (FileNotFoundError, NotADirectoryError):
        return None  # removed while walking a live tree
    if stat.S_ISSOCK(st.st_mode):
        return None
    entry = ScanEntry(rel, st, link=link, dirfd=dirfd, name=name)
    entry.xattrs = read_xattrs(entry.path)
    return entry


def overlay_changes(upper: Path) -> Iterator[ScanEntry]:
    """The entries of an overlay upper directory, whiteouts and opaque flags as markers."""
    for entry in walk(upper):
        assert entry.st is not None
        if is_whiteout(entry.st):
            entry.kind = "whiteout"
        yield entry
        if stat.S_ISDIR(entry.st.st_mode) and is_opaque(entry.path):
            yield ScanEntry(entry.rel, entry.st, "opaque", dirfd=entry.dirfd, name=entry.name)
