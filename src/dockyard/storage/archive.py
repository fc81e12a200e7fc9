"""Layer archives: apply a (compressed) tar safely; write a directory's changes as a tar."""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .compression import GZIP, open_compressor, open_decompressed
from .digest import HashingWriter
from .errors import StorageError, UnsafeArchive
from .limits import DEFAULT_LIMITS, Limits
from .saferoot import clean_path, split_parent
from .tarreader import TarEntry, TarReader
from .tarwriter import TarWriter
from .treescan import OPAQUE_MARKER, WHITEOUT_PREFIX, ScanEntry, overlay_changes, walk
from .treewriter import Meta, TreeWriter

__all__ = [
    "DEFAULT_LIMITS",
    "AppliedLayer",
    "LayerDigests",
    "Limits",
    "apply_tar",
    "write_diff",
    "write_entries",
    "write_tree",
]


@dataclass(frozen=True)
class AppliedLayer:
    diff_id: str  # sha256 of the uncompressed tar
    size: int  # bytes of regular file content unpacked


@dataclass(frozen=True)
class LayerDigests:
    diff_id: str  # sha256 of the uncompressed tar
    digest: str  # sha256 of the blob as written (compressed)
    size: int  # bytes of the blob as written


_SPECIAL = {
    tarfile.CHRTYPE: stat.S_IFCHR,
    tarfile.BLKTYPE: stat.S_IFBLK,
    tarfile.FIFOTYPE: stat.S_IFIFO,
}
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)


def apply_tar(
    stream: BinaryIO,
    dest: Path,
    limits: Limits = DEFAULT_LIMITS,
    *,
    use_openat2: bool = True,
) -> AppliedLayer:
    """Unpack a tar (plain, gzip, zstd, xz or bzip2, told by its magic) into `dest`.

    Whiteouts become overlay whiteouts. Nothing outside `dest` is created, changed or
    followed, whatever the archive holds; a hostile or oversized archive raises
    UnsafeArchive or LimitExceeded, leaving `dest` partly written (callers unpack into a
    scratch directory). `use_openat2=False` forces the portable resolution (for tests).
    """
    source = open_decompressed(stream)
    try:
        reader = TarReader(source, limits)
        size = 0
        with TreeWriter(dest, "overlay", use_openat2) as writer:
            for entry in reader:
                try:
                    size += _apply_entry(writer, reader, entry)
                except OSError as e:
                    name = os.fsdecode(entry.name)
                    raise StorageError(f"cannot unpack {name!r}: {e.strerror}") from e
            writer.finish()
        reader.drain()
    finally:
        source.close()
    return AppliedLayer(reader.digest, size)


def _apply_entry(writer: TreeWriter, reader: TarReader, entry: TarEntry) -> int:
    rel = clean_path(entry.name)
    head, base = split_parent(rel)
    if base.startswith(WHITEOUT_PREFIX):
        if base == OPAQUE_MARKER:
            writer.opaque(head)
        elif not base.startswith(WHITEOUT_PREFIX * 2):  # other .wh..wh. names: aufs internals
            target = base[len(WHITEOUT_PREFIX) :]
            if target in (b".", b".."):
                raise UnsafeArchive(f"whiteout {os.fsdecode(entry.name)!r} names no file")
            writer.whiteout(head + b"/" + target if head else target)
        return 0
    meta = Meta(entry.mode & 0o7777, entry.uid, entry.gid, entry.mtime_ns, entry.xattrs)
    kind = entry.type
    if kind in _REGULAR:
        writer.regular(rel, meta, lambda fd: _copy_content(reader, fd))
        return entry.size
    if kind == tarfile.DIRTYPE:
        writer.directory(rel, meta)
    elif kind == tarfile.SYMTYPE:
        if not entry.linkname or b"\0" in entry.linkname:
            raise UnsafeArchive(f"symlink {os.fsdecode(entry.name)!r} has a bad target")
        writer.symlink(rel, entry.linkname, meta)
    elif kind == tarfile.LNKTYPE:
        writer.hardlink(rel, clean_path(entry.linkname))
    elif kind in _SPECIAL:
        writer.special(rel, _SPECIAL[kind], meta, os.makedev(entry.devmajor, entry.devminor))
    else:
        raise UnsafeArchive(f"{os.fsdecode(entry.name)!r}: unsupported tar entry type {kind!r}")
    return 0


def _copy_content(reader: TarReader, fd: int) -> None:
    while chunk := reader.read_data():
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]


def write_entries(
    entries: Iterable[ScanEntry], out: BinaryIO, compression: str | None = GZIP
) -> LayerDigests:
    """Write entries as a layer tar to `out`, compressed, and return its digests."""
    blob = HashingWriter(out)
    compressor = open_compressor(blob, compression)
    tar = HashingWriter(compressor)
    writer = TarWriter(tar)
    for entry in entries:
        writer.add(entry)
    writer.close()
    compressor.close()
    return LayerDigests(tar.digest, blob.digest, blob.size)


def write_diff(upper: Path, out: BinaryIO, compression: str | None = GZIP) -> LayerDigests:
    """The changes recorded in an overlay upper directory as an OCI layer tar.

    Overlay whiteouts become `.wh.<name>` entries and opaque directories get a
    `.wh..wh..opq` entry; the output is byte-identical for identical input.
    """
    return write_entries(overlay_changes(upper), out, compression)


def write_tree(root: Path, out: BinaryIO) -> None:
    """A whole tree (a merged rootfs, a rootfs to import) as a plain, sorted tar."""
    writer = TarWriter(out)
    for entry in walk(root):
        writer.add(entry)
    writer.close()
