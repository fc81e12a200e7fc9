"""Content store: immutable blobs addressed by sha256.

Layout: <root>/blobs/sha256/<hex> for visible blobs, <root>/ingest/ for writes in flight.
A blob becomes visible only by a rename after its digest and size were verified and its
bytes fsynced, so readers never see a partial or wrong blob, two writers of the same blob
both succeed (the second rename replaces identical bytes), and an interrupted write leaves
only an ingest file, which `clean_ingest` removes once no writer holds its lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .digest import check_digest
from .errors import DigestMismatch, NotFound
from .fsutil import fsync_dir, remove_stale, try_lock_fd

CHUNK = 1 << 20


@dataclass(frozen=True)
class Descriptor:
    digest: str
    size: int
    media_type: str = ""


class ContentStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs" / "sha256"
        self._ingest = self.root / "ingest"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._ingest.mkdir(parents=True, exist_ok=True)

    def _blob(self, digest: str) -> Path:
        return self._blobs / check_digest(digest)

    def has(self, digest: str) -> bool:
        return self._blob(digest).is_file()

    def path(self, digest: str) -> Path:
        path = self._blob(digest)
        if not path.is_file():
            raise NotFound(f"blob {digest} not found")
        return path

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self._blob(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def size(self, digest: str) -> int:
        try:
            return self._blob(digest).stat().st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def write(self, data: bytes, expected: str | None = None, media_type: str = "") -> Descriptor:
        return self.ingest(io.BytesIO(data), expected, len(data), media_type)

    def ingest(
        self,
        stream: BinaryIO,
        expected: str | None = None,
        size: int | None = None,
        media_type: str = "",
    ) -> Descriptor:
        """Copy `stream` into the store, verifying `expected` and `size` when given.

        When `expected` is already stored the stream is not read at all.
        """
        if expected is not None:
            check_digest(expected)
            if self.has(expected):
                stored = self.size(expected)
                if size is not None and size != stored:
                    raise DigestMismatch(f"{expected}: stored size {stored}, expected {size}")
                return Descriptor(expected, stored, media_type)
        fd, tmp = self._new_ingest_file()
        try:
            digest, written = self._copy_verified(stream, fd, expected, size)
            os.fsync(fd)
            os.rename(tmp, self._blobs / digest[7:])
            fsync_dir(self._blobs)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        finally:
            os.close(fd)
        return Descriptor(digest, written, media_type)

    def _new_ingest_file(self) -> tuple[int, Path]:
        # The flock marks the file as live for clean_ingest, in this and other processes.
        tmp = self._ingest / f"{os.getpid()}-{os.urandom(8).hex()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try_lock_fd(fd)
        return fd, tmp

    @staticmethod
    def _copy_verified(
        stream: BinaryIO, fd: int, expected: str | None, size: int | None
    ) -> tuple[str, int]:
        hasher = hashlib.sha256()
        written = 0
        while chunk := stream.read(CHUNK):
            written += len(chunk)
            if size is not None and written > size:
                raise DigestMismatch(f"content is larger than the expected {size} bytes")
            hasher.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        if size is not None and written != size:
            raise DigestMismatch(f"content is {written} bytes, expected {size}")
        digest = "sha256:" + hasher.hexdigest()
        if expected is not None and digest != expected:
            raise DigestMismatch(f"content has digest {digest}, expected {expected}")
        return digest, written

    def delete(self, digest: str) -> None:
        try:
            self._blob(digest).unlink()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def digests(self) -> Iterator[str]:
        for entry in os.scandir(self._blobs):
            digest = "sha256:" + entry.name
            if entry.is_file(follow_symlinks=False) and _is_valid(digest):
                yield digest

    def clean_ingest(self, min_age: float = 10.0) -> int:
        """Remove ingest files left by interrupted writers; return how many."""
        return remove_stale(self._ingest, min_age)


def _is_valid(digest: str) -> bool:
    try:
        check_digest(digest)
    except ValueError:
        return False
    return True
