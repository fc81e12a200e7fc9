"""A streaming tar reader that bounds everything it holds or reads.

tarfile would buffer PAX headers of any size a hostile archive declares and has no entry
or byte limits, and its header parsing costs more than creating a small file; this reader
parses headers itself (names stay bytes), PAX and GNU long names (bounded), xattrs,
limits, and hashes the whole uncompressed stream (the layer's diff ID).
"""

from __future__ import annotations

import hashlib
import struct
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
        self._buf = b""  # read ahead from the stream; unread from _pos on
        self._pos = 0

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def _fill(self, n: int) -> int:
        """Buffer at least `n` unread bytes if the stream has them; return how many are.

        Everything read from the stream is counted and hashed here, in large chunks.
        """
        have = len(self._buf) - self._pos
        if have >= n:
            return have
        parts = [self._buf[self._pos :]] if have else []
        while have < n:
            chunk = self._stream.read(max(CHUNK, n - have))
            if not chunk:
                break
            self.total += len(chunk)
            if self.total > self._limits.max_total_size:
                raise LimitExceeded(
                    f"archive is larger than the limit of {self._limits.max_total_size} bytes"
                )
            self._hash.update(chunk)
            parts.append(chunk)
            have += len(chunk)
        self._buf = parts[0] if len(parts) == 1 else b"".join(parts)
        self._pos = 0
        return have

    def _take(self, n: int) -> bytes:
        """The next `n` bytes, or fewer at the end of the stream."""
        n = min(n, self._fill(n))
        data = self._buf[self._pos : self._pos + n]
        self._pos += n
        return data

    def _take_exact(self, n: int) -> bytes:
        data = self._take(n)
        if len(data) != n:
            raise UnsafeArchive("archive is truncated")
        return data

    def _available(self) -> int:
        """Unread buffered bytes, refilling when there are none; 0 at the end of the stream."""
        return len(self._buf) - self._pos or self._fill(1)

    def read_data(self, n: int = CHUNK) -> bytes:
        """The next min(n, bytes left) bytes of the current entry's content; b"" at its end."""
        n = min(n, self._data_left)
        data = self._take_exact(n)
        self._data_left -= n
        self._left -= n
        return data

    def _skip(self) -> None:
        while self._left:
            n = min(self._left, self._available())
            if n == 0:
                raise UnsafeArchive("archive is truncated")
            self._pos += n
            self._left -= n
        self._data_left = 0

    def __iter__(self) -> Iterator[TarEntry]:
        global_pax: dict[bytes, bytes] = {}
        pax: dict[bytes, bytes] = {}
        long_name = long_link = None
        while True:
            self._skip()
            header = self._take(BLOCK)
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
        while self._available():
            self._pos = len(self._buf)

    def _read_record(self, size: int) -> bytes:
        if size > self._limits.max_header_size:
            raise LimitExceeded(
                f"archive header record of {size} bytes exceeds {self._limits.max_header_size}"
            )
        return self._take_exact(_padded(size))[:size]

    def _entry(
        self,
        info: _Header,
        pax: dict[bytes, bytes],
        long_name: bytes | None,
        long_link: bytes | None,
    ) -> TarEntry:
        if info.type == tarfile.GNUTYPE_SPARSE or any(k.startswith(b"GNU.sparse.") for k in pax):
            raise UnsafeArchive(f"{info.name!r}: sparse files are not supported")
        name = pax.get(b"path") or long_name or info.name
        link = pax.get(b"linkpath") or long_link or info.linkname
        limit = self._limits.max_path_length
        if len(name) > limit or len(link) > limit:
            raise LimitExceeded(f"archive path longer than {limit} bytes")
        try:
            size = int(pax[b"size"]) if b"size" in pax else info.size
            uid = int(pax[b"uid"]) if b"uid" in pax else info.uid
            gid = int(pax[b"gid"]) if b"gid" in pax else info.gid
            mtime_ns = _time_ns(pax[b"mtime"]) if b"mtime" in pax else info.mtime * 10**9
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


def _parse_header(block: bytes) -> _Header:
    """The fields of one ustar/GNU header block; its checksum verified."""
    (name, mode, uid, gid, size, mtime, checksum, kind, link, magic, major, minor, prefix) = (
        _FIELDS.unpack(block)
    )
    stored = _number(checksum)
    if stored != sum(block) - sum(checksum) + 256 and stored != sum(_SIGNED.unpack(block)) + 256:
        raise UnsafeArchive("invalid tar header: bad checksum")
    name = _cstr(name)
    if magic == b"ustar\0" and prefix[0]:  # POSIX: the name continues in the prefix
        name = _cstr(prefix) + b"/" + name
    if kind == tarfile.AREGTYPE and name.endswith(b"/"):
        kind = tarfile.DIRTYPE  # old tars mark directories by a trailing slash only
    device = kind in (tarfile.CHRTYPE, tarfile.BLKTYPE)
    return _Header(
        name=name,
        mode=_number(mode),
        uid=_number(uid),
        gid=_number(gid),
        size=_number(size),
        mtime=_number(mtime),
        type=kind,
        linkname=_cstr(link),
        devmajor=_number(major) if device else 0,
        devminor=_number(minor) if device else 0,
    )


@dataclass
class _Header:
    name: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    type: bytes
    linkname: bytes
    devmajor: int
    devminor: int


# name mode uid gid size mtime checksum type linkname magic (version uname gname) devmajor
# devminor prefix
_FIELDS = struct.Struct("100s8s8s8s12s12s8sc100s6s66x8s8s155s12x")
_SIGNED = struct.Struct("148b8x356b")


def _cstr(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


def _number(field: bytes) -> int:
    """An octal field, or GNU's base-256 form for values octal cannot hold."""
    if field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return value - (1 << (8 * len(field) - 8)) if field[0] == 0xFF else value
    try:
        return int(field.rstrip(b"\0") or b"0", 8)  # int() itself skips the spaces
    except ValueError:
        pass
    digits = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise UnsafeArchive(f"invalid tar header: bad number {field!r}") from None


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


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK
