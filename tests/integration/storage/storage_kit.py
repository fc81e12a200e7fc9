"""Helpers for the storage integration tests: building tars, fingerprinting trees."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

Member = tuple[tarfile.TarInfo, bytes | None]


def tar_bytes(*members: Member, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def reg(name: str, data: bytes = b"x", mode: int = 0o644, **attrs: object):
    info = tarfile.TarInfo(name)
    info.mode = mode
    info.mtime = 1_600_000_000
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def _entry(name: str, kind: bytes, mode: int = 0o755, **attrs: object):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 1_600_000_000
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, None


def directory(name: str, mode: int = 0o755, **attrs: object):
    return _entry(name, tarfile.DIRTYPE, mode, **attrs)


def symlink(name: str, target: str):
    return _entry(name, tarfile.SYMTYPE, 0o777, linkname=target)


def hardlink(name: str, target: str):
    return _entry(name, tarfile.LNKTYPE, 0o644, linkname=target)


def device(name: str, kind: bytes, major: int, minor: int, mode: int = 0o660):
    return _entry(name, kind, mode, devmajor=major, devminor=minor)


def fingerprint(root: Path) -> dict[str, tuple]:
    """Everything observable about a tree: types, modes, owners, times, links, content, xattrs."""
    result: dict[str, tuple] = {}
    paths = [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]
    for path in paths:
        st = path.lstat()
        if stat.S_ISREG(st.st_mode):
            extra: object = hashlib.sha256(path.read_bytes()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            extra = os.readlink(path)
        else:
            extra = st.st_rdev
        xattrs = tuple(
            sorted((k, os.getxattr(path, k, follow_symlinks=False)) for k in _xattr_names(path))
        )
        rel = str(path.relative_to(root)) if path != root else "."
        result[rel] = (st.st_mode, st.st_uid, st.st_gid, st.st_nlink, st.st_mtime_ns, extra, xattrs)
    return result


def _xattr_names(path: Path) -> list[str]:
    try:
        return os.listxattr(path, follow_symlinks=False)
    except OSError:
        return []
