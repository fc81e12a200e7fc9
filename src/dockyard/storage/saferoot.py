"""Resolve paths inside a directory as if it were `/`, so nothing can lead outside it.

Every archive entry is created through a directory file descriptor obtained here. The
parent path is resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS): `..` stops
at the root and symlinks, absolute or relative, are interpreted inside the root, exactly
as a container would see them. Kernels without openat2 get the same semantics from a walk
of one component at a time with O_NOFOLLOW, expanding symlinks by hand. The last component
is never followed: callers create it with *at calls relative to the returned parent.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from . import syscalls
from .errors import UnsafeArchive

_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_MAX_SYMLINKS = 40
_CACHE_SIZE = 4096


def clean_path(name: bytes) -> bytes:
    """An archive name as a relative path with no `.`, `..` or empty components.

    A leading `/` is dropped, as Docker does; `..` that would climb above the root is refused.
    """
    if b"\0" in name:
        raise UnsafeArchive(f"path {name!r} contains a NUL byte")
    parts: list[bytes] = []
    for part in name.split(b"/"):
        if part in (b"", b"."):
            continue
        if part == b"..":
            if not parts:
                raise UnsafeArchive(f"path {os.fsdecode(name)!r} climbs out of the layer")
            parts.pop()
        else:
            parts.append(part)
    return b"/".join(parts)


def split_parent(rel: bytes) -> tuple[bytes, bytes]:
    head, _, tail = rel.rpartition(b"/")
    return head, tail


class SafeRoot:
    """Directory file descriptors for paths inside `root`, cached until invalidated.

    Call `invalidate` after removing anything or creating a symlink: either can change
    what a path resolves to. Invalidated descriptors stay open, since the caller may be
    using one, until `release` is called between two entries.
    """

    def __init__(self, root: Path, use_openat2: bool = True) -> None:
        self.path = Path(root)
        self.fd = os.open(root, _DIR_FLAGS)
        self._use_openat2 = use_openat2
        self._cache: dict[bytes, int] = {}
        self._retired: list[int] = []

    def close(self) -> None:
        self.invalidate()
        self.release()
        os.close(self.fd)

    def invalidate(self) -> None:
        self._retired.extend(self._cache.values())
        self._cache.clear()

    def release(self) -> None:
        """Close invalidated descriptors; none obtained before this call may be used after."""
        for fd in self._retired:
            os.close(fd)
        self._retired.clear()

    def parent(self, rel: bytes, create: bool = True) -> tuple[int, bytes]:
        """(fd of the directory holding `rel`, last component of `rel`)."""
        head, name = split_parent(rel)
        return self.dir(head, create), name

    def dir(self, rel: bytes, create: bool = True) -> int:
        """An O_PATH fd of directory `rel`, creating missing directories when asked.

        Raises FileNotFoundError when missing and not `create`, UnsafeArchive when a
        component is not a directory or symlinks loop.
        """
        if not rel:
            return self.fd
        fd = self._cache.get(rel)
        if fd is None:
            fd = self._resolve(rel, create)
            if len(self._cache) >= _CACHE_SIZE:
                self.invalidate()
            self._cache[rel] = fd
        return fd

    def _resolve(self, rel: bytes, create: bool) -> int:
        if self._use_openat2:
            try:
                return syscalls.openat2(
                    self.fd,
                    rel,
                    _DIR_FLAGS,
                    syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS,
                )
            except OSError as e:
                if e.errno == errno.ENOSYS:
                    self._use_openat2 = False
                elif e.errno == errno.ENOENT:
                    if not create:
                        raise FileNotFoundError(errno.ENOENT, "not found", rel) from None
                elif e.errno != errno.EAGAIN:
                    raise _unsafe(rel, e) from None
        return self._walk(rel, create)

    def _walk(self, rel: bytes, create: bool) -> int:
        stack = [self.fd]  # stack[i] is the directory at depth i; stack[0] stays the root
        todo = rel.split(b"/")
        todo.reverse()
        symlinks = 0
        try:
            while todo:
                part = todo.pop()
                if part in (b"", b"."):
                    continue
                if part == b"..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                    continue
                target = self._step(stack[-1], part, create, rel)
                if isinstance(target, int):
                    stack.append(target)
                    continue
                symlinks += 1
                if symlinks > _MAX_SYMLINKS:
                    raise UnsafeArchive(f"{os.fsdecode(rel)!r}: too many levels of symlinks")
                if target.startswith(b"/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo.extend(reversed(target.split(b"/")))
        except BaseException:
            for fd in stack[1:]:
                os.close(fd)
            raise
        for fd in stack[1:-1]:
            os.close(fd)
        return stack[-1] if len(stack) > 1 else os.dup(self.fd)

    @staticmethod
    def _step(dirfd: int, part: bytes, create: bool, rel: bytes) -> int | bytes:
        """Open one component: its fd, or its link text if it is a symlink."""
        try:
            return os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dirfd)
        except FileNotFoundError:
            if not create:
                raise
            os.mkdir(part, 0o755, dir_fd=dirfd)
            return os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=dirfd)
        except OSError as e:
            st = os.stat(part, dir_fd=dirfd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                return os.readlink(part, dir_fd=dirfd)
            raise _unsafe(rel, e) from None


def _unsafe(rel: bytes, error: OSError) -> UnsafeArchive:
    if error.errno == errno.ELOOP:
        return UnsafeArchive(f"{os.fsdecode(rel)!r}: too many levels of symlinks")
    if error.errno == errno.ENOTDIR:
        return UnsafeArchive(f"{os.fsdecode(rel)!r}: a parent is not a directory")
    return UnsafeArchive(f"{os.fsdecode(rel)!r}: {error.strerror}")
