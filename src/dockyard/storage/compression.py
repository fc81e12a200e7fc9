"""Compressed streams, recognised by their magic bytes rather than by media type."""

from __future__ import annotations

import bz2
import io
import lzma
from typing import BinaryIO

import zstandard
from isal import igzip_lib, igzip_threaded

from .errors import UnsafeArchive

GZIP, ZSTD = "gzip", "zstd"
_MAGICS = {
    b"\x1f\x8b": GZIP,
    b"\x28\xb5\x2f\xfd": ZSTD,
    b"\xfd7zXZ\x00": "xz",
    b"BZh": "bzip2",
}
# isal level 1 compresses several times faster than gzip -6 at a similar ratio on layers.
GZIP_LEVEL = 1
ZSTD_LEVEL = 3
BLOCK = 1 << 20
_CODEC_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    igzip_lib.IsalError,
    zstandard.ZstdError,
    lzma.LZMAError,
)


def detect(head: bytes) -> str | None:
    """The compression of a stream starting with `head`, or None for plain data."""
    for magic, kind in _MAGICS.items():
        if head.startswith(magic):
            return kind
    return None


class _Prefixed(io.RawIOBase):
    """`stream` with the bytes already read from it for sniffing put back in front."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Checked(io.RawIOBase):
    """Reports a corrupt or truncated compressed stream as UnsafeArchive, whatever the codec."""

    def __init__(self, reader: BinaryIO) -> None:
        self._reader = reader

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        try:
            return self._reader.read(n)
        except _CODEC_ERRORS as e:
            raise UnsafeArchive(f"corrupt compressed stream: {e}") from None

    def close(self) -> None:
        self._reader.close()
        super().close()


def open_decompressed(stream: BinaryIO) -> BinaryIO:
    """A reader of the plain bytes of `stream`, whatever its compression."""
    return _Checked(_open_decompressed(stream))  # type: ignore[return-value]


def _open_decompressed(stream: BinaryIO) -> BinaryIO:
    head = stream.read(8)
    source = io.BufferedReader(_Prefixed(head, stream), BLOCK)
    kind = detect(head)
    if kind == GZIP:
        # Decompresses in a worker thread: inflate runs beside tar parsing on another core.
        return igzip_threaded.open(source, "rb", threads=1, block_size=BLOCK)
    if kind == ZSTD:
        reader = zstandard.ZstdDecompressor().stream_reader(source, read_size=BLOCK)
        return io.BufferedReader(reader, BLOCK)  # type: ignore[arg-type]
    if kind == "xz":
        return lzma.LZMAFile(source)  # type: ignore[return-value]
    if kind == "bzip2":
        return bz2.BZ2File(source)  # type: ignore[return-value]
    return source


def open_compressor(out: BinaryIO, compression: str | None) -> BinaryIO:
    """A writer compressing into `out`; closing it finishes the stream but leaves `out` open."""
    if compression is None:
        return _Unclosing(out)
    if compression == GZIP:
        # mtime 0 and fixed block size keep the output byte-identical between runs.
        return igzip_threaded.open(
            _Unclosing(out), "wb", compresslevel=GZIP_LEVEL, threads=2, block_size=BLOCK
        )
    if compression == ZSTD:
        writer = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(out, closefd=False)
        return writer  # type: ignore[return-value]
    raise ValueError(f"unsupported compression {compression!r}")


class _Unclosing(io.RawIOBase):
    """Passes writes to `out` and ignores close, so the caller keeps its stream."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[no-untyped-def]
        self._out.write(data)
        return len(data)

    def flush(self) -> None:
        self._out.flush()
