"""Create file-system entries inside a root, safely, from any source of entries.

Both apply_tar (entries from a tar stream) and the copy snapshotter (entries from layer
directories) go through this one writer, so the safety rules live in one place: parents
are resolved by SafeRoot, the last component is never followed, whatever is in the way is
removed first, and metadata is set on the entry itself.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .errors import StorageError, UnsafeArchive
from .saferoot import SafeRoot

_T = TypeVar("_T")
OPAQUE_XATTR = "trusted.overlay.opaque"
# overlayfs's own attributes; an archive must not plant redirects or opaque flags.
_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")
_IGNORED_XATTR_ERRORS = (errno.ENOTSUP, errno.EPERM)


@dataclass
class Meta:
    mode: int  # permission bits, setuid/setgid/sticky included
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)


class TreeWriter:
    """Writes entries under `root`.

    `whiteouts` says what a deletion becomes: "overlay" stores it the overlayfs way (a 0/0
    character device, the opaque xattr), as a layer directory must; "delete" removes the
    lower content, as a flattened copy must.
    """

    def __init__(self, root: Path, whiteouts: str = "overlay", use_openat2: bool = True) -> None:
        if whiteouts not in ("overlay", "delete"):
            raise ValueError(f"whiteouts must be 'overlay' or 'delete', not {whiteouts!r}")
        self._root = SafeRoot(root, use_openat2)
        self._overlay = whiteouts == "overlay"
        self._dir_times: list[tuple[bytes, int]] = []

    def close(self) -> None:
        self._root.close()

    def __enter__(self) -> TreeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- entries --------------------------------------------------------------------------

    def directory(self, rel: bytes, meta: Meta) -> None:
        self._root.release()
        if rel:
            pfd, name = self._root.parent(rel)
            try:
                os.mkdir(name, 0o700, dir_fd=pfd)
            except FileExistsError:
                if not self._clear(pfd, name, keep_dir=True):
                    os.mkdir(name, 0o700, dir_fd=pfd)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=pfd)
        else:
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=self._root.fd)
        try:
            self._set_meta_fd(fd, meta)
        finally:
            os.close(fd)
        # A directory's mtime changes as entries land in it: set it when all are written.
        self._dir_times.append((rel, meta.mtime_ns))

    def regular(self, rel: bytes, meta: Meta, fill: Callable[[int], None]) -> None:
        """A regular file whose content `fill` writes into the fd it is given."""
        self._root.release()
        pfd, name = self._entry_parent(rel)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = self._make(pfd, name, lambda: os.open(name, flags, 0o600, dir_fd=pfd))
        try:
            fill(fd)
            self._set_meta_fd(fd, meta)
        finally:
            os.close(fd)

    def symlink(self, rel: bytes, target: bytes, meta: Meta) -> None:
        self._root.release()
        pfd, name = self._entry_parent(rel)
        # No cached directory goes through `name`: had one, `_make` would have cleared it.
        self._make(pfd, name, lambda: os.symlink(target, name, dir_fd=pfd))
        os.chown(name, meta.uid, meta.gid, dir_fd=pfd, follow_symlinks=False)
        self._set_xattrs_at(pfd, name, meta.xattrs)
        os.utime(name, ns=(meta.mtime_ns, meta.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def hardlink(self, rel: bytes, target: bytes) -> None:
        """A second name for the entry at `target`, which must already be inside the root."""
        self._root.release()
        if rel == target:
            return
        if not target:
            raise UnsafeArchive(f"hardlink {_show(rel)} -> the layer root")
        try:
            tfd, tname = self._root.parent(target, create=False)
            tstat = os.stat(tname, dir_fd=tfd, follow_symlinks=False)
        except FileNotFoundError:
            raise UnsafeArchive(
                f"hardlink {_show(rel)} -> {_show(target)}: target is not in the layer"
            ) from None
        if stat.S_ISDIR(tstat.st_mode):
            raise UnsafeArchive(f"hardlink {_show(rel)} -> {_show(target)}: target is a directory")
        pfd, name = self._entry_parent(rel)
        self._make(
            pfd,
            name,
            lambda: os.link(tname, name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False),
        )

    def special(self, rel: bytes, file_type: int, meta: Meta, rdev: int = 0) -> None:
        """A character or block device or a fifo (`file_type` is stat.S_IFCHR, ...)."""
        self._root.release()
        if file_type not in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
            raise ValueError(f"not a special file type: {file_type:o}")
        pfd, name = self._entry_parent(rel)
        self._make(pfd, name, lambda: os.mknod(name, file_type | 0o600, rdev, dir_fd=pfd))
        self._set_meta_at(pfd, name, meta)

    def whiteout(self, rel: bytes) -> None:
        """`rel` is deleted from the layers below."""
        self._root.release()
        if not rel:
            raise UnsafeArchive("a whiteout cannot delete the root")
        if self._overlay:
            pfd, name = self._root.parent(rel)
            self._make(pfd, name, lambda: os.mknod(name, stat.S_IFCHR, 0, dir_fd=pfd))
            return
        try:
            pfd, name = self._root.parent(rel, create=False)
        except FileNotFoundError:
            return
        self._clear(pfd, name)

    def opaque(self, rel: bytes) -> None:
        """Directory `rel` hides everything the layers below have in it."""
        self._root.release()
        if self._overlay:
            fd = self._root.dir(rel)
            os.setxattr(f"/proc/self/fd/{fd}", OPAQUE_XATTR, b"y")
            return
        try:
            fd = self._root.dir(rel, create=False)
        except FileNotFoundError:
            return
        for name in os.listdir(f"/proc/self/fd/{fd}"):
            self._clear(fd, os.fsencode(name))

    def finish(self) -> None:
        """Set directory mtimes, now that nothing more is written into them."""
        for rel, mtime_ns in reversed(self._dir_times):
            try:
                pfd, name = self._root.parent(rel, create=False)
                if rel:
                    os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=pfd, follow_symlinks=False)
                else:
                    os.utime(f"/proc/self/fd/{pfd}", ns=(mtime_ns, mtime_ns))
            except (FileNotFoundError, UnsafeArchive):
                continue  # replaced by a later entry
        self._dir_times.clear()

    # -- helpers --------------------------------------------------------------------------

    def _entry_parent(self, rel: bytes) -> tuple[int, bytes]:
        if not rel:
            raise UnsafeArchive("only a directory can be the root of a layer")
        return self._root.parent(rel)

    def _make(self, pfd: int, name: bytes, create: Callable[[], _T]) -> _T:
        """Run `create`; if something is in the way, remove it and run `create` again."""
        try:
            return create()
        except FileExistsError:
            self._clear(pfd, name)
            return create()

    def _clear(self, pfd: int, name: bytes, keep_dir: bool = False) -> bool:
        """Remove whatever is at `name`; True if a directory was kept instead."""
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(os.fsdecode(name), dir_fd=pfd)
        else:
            os.unlink(name, dir_fd=pfd)
        self._root.invalidate()
        return False

    def _set_meta_fd(self, fd: int, meta: Meta) -> None:
        # chown clears setuid bits and security.capability, so it comes first.
        os.fchown(fd, meta.uid, meta.gid)
        os.fchmod(fd, meta.mode & 0o7777)
        if meta.xattrs:
            for key, value in _settable(meta.xattrs):
                _set_xattr(fd, key, value)
        os.utime(fd, ns=(meta.mtime_ns, meta.mtime_ns))

    def _set_meta_at(self, pfd: int, name: bytes, meta: Meta) -> None:
        os.chown(name, meta.uid, meta.gid, dir_fd=pfd, follow_symlinks=False)
        os.chmod(name, meta.mode & 0o7777, dir_fd=pfd, follow_symlinks=False)
        self._set_xattrs_at(pfd, name, meta.xattrs)
        os.utime(name, ns=(meta.mtime_ns, meta.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    @staticmethod
    def _set_xattrs_at(pfd: int, name: bytes, xattrs: dict[str, bytes]) -> None:
        if xattrs:
            # No *at form of lsetxattr: go through the parent's fd, never following `name`.
            path = os.fsencode(f"/proc/self/fd/{pfd}/") + name
            for key, value in _settable(xattrs):
                _set_xattr(path, key, value)


def _settable(xattrs: dict[str, bytes]) -> list[tuple[str, bytes]]:
    return [(k, v) for k, v in xattrs.items() if not k.startswith(_OVERLAY_XATTRS)]


def _set_xattr(target: int | bytes, key: str, value: bytes) -> None:
    try:
        if isinstance(target, int):
            os.setxattr(target, key, value)
        else:
            os.setxattr(target, key, value, follow_symlinks=False)
    except OSError as e:
        # As Docker: a file system without (this kind of) xattrs must not stop a pull.
        if e.errno not in _IGNORED_XATTR_ERRORS:
            raise StorageError(f"cannot set xattr {key}: {e.strerror}") from None


def _show(rel: bytes) -> str:
    return repr(os.fsdecode(rel))
