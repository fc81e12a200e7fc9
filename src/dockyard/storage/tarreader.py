"""A streaming tar reader that bounds everything it holds or reads.

tarfile would buffer PAX headers of any size a hostile archive declares and has no entry
or byte limits; this reader parses the ustar header with tarfile.TarInfo.frombuf and does
the rest itself: PAX and GNU long names (bounded), xattrs, limits, and the sha256 of the
whole uncompressed stream (the layer's diff ID).
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import BinaryIO

from .errors import LimitExceeded, UnsafeArchive
from .limits import Limits

BLOCK = 512
CHUNK = 1 << 20
_XATTR_PREFIX = b"SCHILY.xattr."
# PAX keys that make no sense for every following entry at once.
_PER_FILE_KEYS = (b"path", b"linkpath", b"size")
_DATA_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)


@dataclass
class TarEntry:
    name: bytes
    type: bytes  # tarfile's type codes: REGTYPE, DIRTYPE, SYMTYPE, ...
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    linkname: bytes = b""
    devmajor: int = 0
    devminor: int = 0
    xattrs: dict[str, bytes] = field(default_factory=dict)


class TarReader:
    def __init__(self, stream: BinaryIO, limits: Limits) -> None:
        self._stream = stream
        self._limits = limits
        self._hash = hashlib.sha256()
        self.total = 0  # uncompressed bytes read so far
        self._left = 0  # unread data bytes of the current entry, padding included
        self._data_left = 0
        self._entries = 0

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def _read(self, n: int) -> bytes:
        data = self._stream.read(n)
        while len(data) < n:
            more = self._stream.read(n - len(data))
            if not more:
                break
            data += more
        self.total += len(data)
        if self.total > self._limits.max_total_size:
            raise LimitExceeded(
                f"archive is larger than the limit of {self._limits.max_total_size} bytes"
            )
        self._hash.update(data)
        return data

    def _read_exact(self, n: int) -> bytes:
        data = self._read(n)
        if len(data) != n:
            raise UnsafeArchive("archive is truncated")
        return data

    def read_data(self, n: int = CHUNK) -> bytes:
        """Up to `n` bytes of the current entry's content; b"" at its end."""
        n = min(n, self._data_left)
        if n == 0:
            return b""
        data = self._read_exact(n)
        self._data_left -= n
        self._left -= n
        return data

    def _skip(self) -> None:
        while self._left:
            n = min(self._left, CHUNK)
            self._read_exact(n)
            self._left -= n
        self._data_left = 0

    def __iter__(self) -> Iterator[TarEntry]:
        global_pax: dict[bytes, bytes] = {}
        pax: dict[bytes, bytes] = {}
        long_name = long_link = None
        while True:
            self._skip()
            header = self._read(BLOCK)
            if not header:
                break  # EOF at a header boundary ends the archive too, as in Go's reader
            if len(header) != BLOCK:
                raise UnsafeArchive("archive is truncated")
            if header == bytes(BLOCK):
                break
            self._entries += 1
            if self._entries > self._limits.max_entries:
                raise LimitExceeded(f"archive has more than {self._limits.max_entries} entries")
            info = _parse_header(header)
            kind = info.type
            if kind in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME,
                        tarfile.GNUTYPE_LONGLINK):  # fmt: skip
                data = self._read_record(info.size)
                if kind == tarfile.XHDTYPE:
                    pax.update(_parse_pax(data))
                elif kind == tarfile.XGLTYPE:
                    records = _parse_pax(data)
                    global_pax.update((k, v) for k, v in records.items() if k not in _PER_FILE_KEYS)
                elif kind == tarfile.GNUTYPE_LONGNAME:
                    long_name = data.split(b"\0", 1)[0]
                else:
                    long_link = data.split(b"\0", 1)[0]
                continue
            entry = self._entry(info, {**global_pax, **pax}, long_name, long_link)
            pax = {}
            long_name = long_link = None
            # As in Go's reader, links, devices and directories carry no data whatever
            # their size field says.
            if kind in _DATA_TYPES:
                self._data_left = entry.size
                self._left = _padded(entry.size)
            yield entry
        self._skip()

    def drain(self) -> None:
        """Read (and hash) whatever follows the end-of-archive marker."""
        while self._read(CHUNK):
            pass

    def _read_record(self, size: int) -> bytes:
        if size > self._limits.max_header_size:
            raise LimitExceeded(
                f"archive header record of {size} bytes exceeds {self._limits.max_header_size}"
            )
        data = self._read_exact(_padded(size))
        return data[:size]

    def _entry(
        self,
        info: tarfile.TarInfo,
        pax: dict[bytes, bytes],
        long_name: bytes | None,
        long_link: bytes | None,
    ) -> TarEntry:
        if info.type in (tarfile.GNUTYPE_SPARSE,) or any(k.startswith(b"GNU.sparse.") for k in pax):
            raise UnsafeArchive(f"{info.name!r}: sparse files are not supported")
        name = pax.get(b"path") or long_name or _raw(info.name)
        link = pax.get(b"linkpath") or long_link or _raw(info.linkname)
        limit = self._limits.max_path_length
        if len(name) > limit or len(link) > limit:
            raise LimitExceeded(f"archive path longer than {limit} bytes")
        try:
            size = int(pax[b"size"]) if b"size" in pax else info.size
            uid = int(pax[b"uid"]) if b"uid" in pax else info.uid
            gid = int(pax[b"gid"]) if b"gid" in pax else info.gid
            mtime_ns = _time_ns(pax[b"mtime"]) if b"mtime" in pax else int(info.mtime) * 10**9
        except (ValueError, InvalidOperation):
            raise UnsafeArchive(f"{name!r}: malformed numeric PAX record") from None
        if size < 0 or uid < 0 or gid < 0:
            raise UnsafeArchive(f"{name!r}: negative size or id")
        if size > self._limits.max_file_size:
            raise LimitExceeded(
                f"{name!r}: {size} bytes exceeds the file size limit {self._limits.max_file_size}"
            )
        xattrs = {
            k[len(_XATTR_PREFIX) :].decode("utf-8", "surrogateescape"): v
            for k, v in pax.items()
            if k.startswith(_XATTR_PREFIX)
        }
        return TarEntry(
            name=name,
            type=info.type,
            mode=info.mode,
            uid=uid,
            gid=gid,
            size=size,
            mtime_ns=mtime_ns,
            linkname=link,
            devmajor=info.devmajor,
            devminor=info.devminor,
            xattrs=xattrs,
        )


def _parse_header(block: bytes) -> tarfile.TarInfo:
    try:
        return tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError as e:
        raise UnsafeArchive(f"invalid tar header: {e}") from None


def _parse_pax(data: bytes) -> dict[bytes, bytes]:
    """PAX extended header records: `<length> <key>=<value>\\n`, repeated."""
    records: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space]) if space > pos else 0
        except ValueError:
            length = 0
        end = pos + length
        if length <= 0 or end > len(data) or data[end - 1] != 0x0A:
            raise UnsafeArchive("malformed PAX header")
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq:
            raise UnsafeArchive("malformed PAX record")
        records[key] = value
        pos = end
    return records


def _time_ns(value: bytes) -> int:
    return int(Decimal(value.decode("ascii")) * 10**9)


def _raw(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK
