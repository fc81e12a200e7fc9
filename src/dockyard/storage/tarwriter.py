"""Write ScanEntries as a tar stream with stable metadata.

Stable means: PAX format, names without `./`, whole-second mtimes, no atime/ctime, no user
or group names, xattrs in sorted order, hardlinks pointing at the first name in walk order.
The same tree therefore always gives the same bytes.
"""

from __future__ import annotations

import os
import stat
import tarfile
from typing import BinaryIO

from .treescan import OPAQUE_MARKER, WHITEOUT_PREFIX, ScanEntry

BLOCK = 512
CHUNK = 1 << 20


class TarWriter:
    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._first_names: dict[tuple[int, int], bytes] = {}

    def add(self, entry: ScanEntry) -> None:
        if entry.kind == "whiteout":
            head, _, base = entry.rel.rpartition(b"/")
            self._marker(_join(head, WHITEOUT_PREFIX + base), entry.st)
        elif entry.kind == "opaque":
            self._marker(_join(entry.rel, OPAQUE_MARKER), entry.st)
        else:
            self._file(entry)

    def close(self) -> None:
        self._out.write(bytes(2 * BLOCK))

    def _marker(self, name: bytes, st: os.stat_result | None) -> None:
        info = _info(name, tarfile.REGTYPE, 0o600, st)
        self._out.write(_header(info, {}))

    def _file(self, entry: ScanEntry) -> None:
        st = entry.st
        assert st is not None
        mode = st.st_mode
        size = 0
        if stat.S_ISDIR(mode):
            info = _info(entry.rel, tarfile.DIRTYPE, mode, st)
        elif stat.S_ISLNK(mode):
            info = _info(entry.rel, tarfile.SYMTYPE, mode, st)
            info.linkname = _str(entry.link)
        elif stat.S_ISREG(mode):
            first = self._first_name(entry.rel, st)
            if first is None:
                info = _info(entry.rel, tarfile.REGTYPE, mode, st)
                size = info.size = st.st_size
            else:
                info = _info(entry.rel, tarfile.LNKTYPE, mode, st)
                info.linkname = _str(first)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            kind = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info = _info(entry.rel, kind, mode, st)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            info = _info(entry.rel, tarfile.FIFOTYPE, mode, st)
        else:
            return
        self._out.write(_header(info, entry.xattrs))
        if size:
            self._copy(entry, size)

    def _first_name(self, rel: bytes, st: os.stat_result) -> bytes | None:
        """The name already written for this inode, if it is a hardlink seen before."""
        if st.st_nlink < 2:
            return None
        key = (st.st_dev, st.st_ino)
        first = self._first_names.setdefault(key, rel)
        return None if first == rel else first

    def _copy(self, entry: ScanEntry, size: int) -> None:
        """Exactly `size` bytes, as the header promised, even if the file changed meanwhile."""
        left = size
        fd = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=entry.dirfd)
        try:
            while left:
                chunk = os.read(fd, min(left, CHUNK))
                if not chunk:
                    chunk = bytes(min(left, CHUNK))
                self._out.write(chunk)
                left -= len(chunk)
        finally:
            os.close(fd)
        if size % BLOCK:
            self._out.write(bytes(BLOCK - size % BLOCK))


def _join(head: bytes, name: bytes) -> bytes:
    return head + b"/" + name if head else name


def _str(name: bytes) -> str:
    return name.decode("utf-8", "surrogateescape")


def _info(name: bytes, kind: bytes, mode: int, st: os.stat_result | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(_str(name))
    info.type = kind
    info.mode = mode & 0o7777
    if st is not None:
        info.uid, info.gid, info.mtime = st.st_uid, st.st_gid, int(st.st_mtime)
    else:
        info.mtime = 0
    info.uname = info.gname = ""
    return info


def _header(info: tarfile.TarInfo, xattrs: dict[str, bytes]) -> bytes:
    info.pax_headers = {
        "SCHILY.xattr." + key: value.decode("utf-8", "surrogateescape")
        for key, value in sorted(xattrs.items())
    }
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
