"""`docker cp`: stat, read (as a tar) and write (from a tar) paths inside a container.

Paths resolve inside the container's root with symlinks followed as the container would (never
out of it); the last component is not followed, as Docker does, unless the path ends in `/` or
`/.`. A running container is seen as its processes see it (/proc/<pid>/root: its volumes,
binds, tmpfs and /etc files included); a stopped container's rootfs is mounted for the
operation, under the container's lock so a start cannot race it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import stat
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from dockyard.engine import containers as records
from dockyard.engine.errors import InvalidArgument, NotFound
from dockyard.runtime.rootfs import secure_join
from dockyard.storage.archive import apply_tar
from dockyard.storage.tarwriter import TarWriter
from dockyard.storage.treescan import ScanEntry, read_xattrs, walk

_CHUNK = 1 << 16
_SPOOL_IN_MEMORY = 8 << 20

# Go's os.FileMode type bits, which the CLI decodes from the stat header.
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHAR = 1 << 21
_GO_STICKY = 1 << 20


def go_file_mode(mode: int) -> int:
    bits = mode & 0o777
    kind = stat.S_IFMT(mode)
    bits |= {
        stat.S_IFDIR: _GO_DIR,
        stat.S_IFLNK: _GO_SYMLINK,
        stat.S_IFBLK: _GO_DEVICE,
        stat.S_IFCHR: _GO_DEVICE | _GO_CHAR,
        stat.S_IFIFO: _GO_PIPE,
        stat.S_IFSOCK: _GO_SOCKET,
    }.get(kind, 0)
    for flag, go_flag in (
        (stat.S_ISUID, _GO_SETUID),
        (stat.S_ISGID, _GO_SETGID),
        (stat.S_ISVTX, _GO_STICKY),
    ):
        if mode & flag:
            bits |= go_flag
    return bits


def _absolute(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _base(path: str) -> str:
    """Go's filepath.Base, with a trailing `/.` kept as "." (copy the content only)."""
    if path.endswith("/."):
        return "."
    return os.path.basename(path.rstrip("/")) or "/"


def _resolve(rootfs: str, path: str) -> str:
    """The host path of `path`; its last component is not followed unless it ends in / or /."""
    if path.endswith(("/", "/.")) or _base(path) in ("/", ".", ".."):
        return secure_join(rootfs, path)
    parent, base = os.path.split(path.rstrip("/"))
    return os.path.join(secure_join(rootfs, parent), base)


def _not_found(path: str, ref: str) -> NotFound:
    return NotFound(f"Could not find the file {path} in container {ref}")


def _stat_document(rootfs: str, path: str, host_path: str, st: os.stat_result) -> dict:
    link_target = ""
    if stat.S_ISLNK(st.st_mode):
        inside = os.path.relpath(secure_join(rootfs, path), rootfs)
        link_target = "/" if inside == "." else "/" + inside
    seconds, nanos = divmod(st.st_mtime_ns, 1_000_000_000)
    mtime = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if nanos:
        mtime += f".{nanos:09d}".rstrip("0")
    return {
        "name": _base(path),
        "size": st.st_size,
        "mode": go_file_mode(st.st_mode),
        "mtime": mtime + "Z",
        "linkTarget": link_target,
    }


def encode_stat(document: dict) -> str:
    """The X-Docker-Container-Path-Stat header value."""
    return base64.b64encode(json.dumps(document).encode()).decode()


@contextlib.asynccontextmanager
async def _rootfs(engine, record: dict) -> AsyncIterator[str]:
    """The container's root as seen from the host: its processes' view while it runs, its
    rootfs mounted here otherwise."""
    directory = records.container_dir(engine.config.data_root, record["Id"])
    rootfs = directory / "rootfs"
    live = engine.lifecycle._live(record["Id"])
    async with live.lock:
        state = engine.containers.get(record["Id"])["State"]
        if state["Running"] and state["Pid"]:
            yield f"/proc/{state['Pid']}/root"
            return
        if os.path.ismount(rootfs):
            yield str(rootfs)
            return
        rootfs.mkdir(exist_ok=True)
        await asyncio.to_thread(engine.snapshots.mount, record["Id"], rootfs)
        try:
            yield str(rootfs)
        finally:
            if not engine.containers.get(record["Id"])["State"]["Running"]:
                await asyncio.to_thread(engine.snapshots.unmount, rootfs)


async def stat_path(engine, ref: str, path: str) -> dict:
    record = engine.containers.get(ref)
    path = _absolute(path)
    async with _rootfs(engine, record) as rootfs:
        host_path = _resolve(rootfs, path)
        try:
            st = os.lstat(host_path)
        except OSError:
            raise _not_found(path, ref) from None
        return _stat_document(rootfs, path, host_path, st)


async def read_archive(engine, ref: str, path: str) -> tuple[dict, BinaryIO]:
    """(stat document, tar of the path named by its base name), the tar spooled to a file."""
    record = engine.containers.get(ref)
    path = _absolute(path)
    # The caller owns (and closes) the spool once it has sent it.
    spool = tempfile.SpooledTemporaryFile(_SPOOL_IN_MEMORY, dir=engine.config.data_root)  # noqa: SIM115
    try:
        async with _rootfs(engine, record) as rootfs:
            host_path = _resolve(rootfs, path)
            try:
                st = os.lstat(host_path)
            except OSError:
                raise _not_found(path, ref) from None
            document = _stat_document(rootfs, path, host_path, st)
            await asyncio.to_thread(_write_tar, host_path, _base(path), spool)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return document, spool


def _write_tar(host_path: str, name: str, out: BinaryIO) -> None:
    writer = TarWriter(out)
    parent, base = os.path.split(host_path.rstrip("/") or "/")
    parent_fd = os.open(parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        base_bytes = os.fsencode(base) if base else b"."
        st = os.stat(base_bytes, dir_fd=parent_fd, follow_symlinks=False)
        link = os.readlink(base_bytes, dir_fd=parent_fd) if stat.S_ISLNK(st.st_mode) else b""
        top = ScanEntry(os.fsencode(name), st, link=link, dirfd=parent_fd, name=base_bytes)
        top.xattrs = read_xattrs(top.path)
        writer.add(top)
    finally:
        os.close(parent_fd)
    if stat.S_ISDIR(st.st_mode):
        prefix = os.fsencode(name) + b"/"
        for entry in walk(Path(host_path)):
            # A copy: the walk still needs the entry's own rel to descend into it.
            writer.add(dataclasses.replace(entry, rel=prefix + entry.rel))
    writer.close()


async def write_archive(
    engine, ref: str, path: str, body: AsyncIterator[bytes], no_overwrite_dir_non_dir: bool
) -> None:
    """Extract a tar (from the request body) into the directory at `path`."""
    record = engine.containers.get(ref)
    path = _absolute(path)
    with tempfile.TemporaryFile(dir=engine.config.data_root) as spool:
        async for chunk in body:
            await asyncio.to_thread(spool.write, chunk)
        async with _rootfs(engine, record) as rootfs:
            destination = secure_join(rootfs, path)
            if not os.path.lexists(destination):
                raise _not_found(path, ref)
            if not os.path.isdir(destination):
                raise InvalidArgument("extraction point is not a directory")
            mount = _mount_at(record, path)
            if mount is None and record["HostConfig"].get("ReadonlyRootfs"):
                raise InvalidArgument("container rootfs is marked read-only")
            if mount is not None and not mount.get("RW", True):
                raise InvalidArgument("mounted volume is marked read-only")
            if no_overwrite_dir_non_dir:
                spool.seek(0)
                await asyncio.to_thread(_check_overwrites, spool, destination)
            spool.seek(0)
            await asyncio.to_thread(apply_tar, spool, Path(destination))


def _mount_at(record: dict, path: str) -> dict | None:
    """The innermost of the container's volumes, binds and tmpfs mounts holding `path`."""
    path = os.path.normpath(path)
    holding = [
        point
        for point in record.get("Mounts") or []
        if path == point["Destination"] or path.startswith(point["Destination"].rstrip("/") + "/")
    ]
    return max(holding, key=lambda point: len(point["Destination"]), default=None)


def _check_overwrites(spool: BinaryIO, destination: str) -> None:
    """Docker's noOverwriteDirNonDir: a directory never replaces a file, nor the reverse."""
    try:
        with tarfile.open(fileobj=spool, mode="r|*") as tar:
            for member in tar:
                target = secure_join(destination, member.name)
                try:
                    existing = os.lstat(target)
                except OSError:
                    continue
                if stat.S_ISDIR(existing.st_mode) and not member.isdir():
                    raise InvalidArgument(
                        f'cannot overwrite directory "{target[len(destination) :] or "/"}" '
                        f'with non-directory "{member.name}"'
                    )
                if not stat.S_ISDIR(existing.st_mode) and member.isdir():
                    raise InvalidArgument(
                        f'cannot overwrite non-directory "{target[len(destination) :]}" '
                        f'with directory "{member.name}"'
                    )
    except tarfile.TarError as error:
        raise InvalidArgument(f"invalid tar archive: {error}") from None
