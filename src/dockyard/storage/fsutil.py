"""Durable file-system steps shared by the stores: fsync, atomic writes, lock files."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from . import syscalls


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_durably(path: Path, data: bytes) -> None:
    """Write a small file so that it is either absent or complete after a crash."""
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def syncfs(path: Path) -> None:
    """Flush everything written on the file system holding `path` (one call, not one per file)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.syncfs(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path`, between processes and threads alike."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def try_lock_fd(fd: int) -> bool:
    """Take an exclusive flock without waiting; False if someone holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def remove_tree(path: Path) -> None:
    """Remove a file or a directory tree; missing is fine. Never follows symlinks."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


@contextlib.contextmanager
def scratch_dir(parent: Path) -> Iterator[Path]:
    """A new directory in `parent`, flock-ed while in use so `remove_stale` spares it.

    The directory is removed on exit unless the caller renamed it away.
    """
    path = Path(tempfile.mkdtemp(dir=parent))
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    finally:
        remove_tree(path)
        os.close(fd)


def remove_stale(parent: Path, min_age: float = 10.0) -> int:
    """Remove entries of `parent` left by dead writers: unlocked and older than `min_age`.

    `min_age` covers the instant between a writer creating its entry and locking it.
    """
    removed = 0
    for entry in os.scandir(parent):
        try:
            if time.time() - entry.stat(follow_symlinks=False).st_mtime < min_age:
                continue
            fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if try_lock_fd(fd):
                remove_tree(Path(entry.path))
                removed += 1
        finally:
            os.close(fd)
    return removed
