"""Content store on a real file system: verification, atomic visibility, concurrency."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from dockyard.storage.content import ContentStore
from dockyard.storage.errors import DigestMismatch, InvalidDigest, NotFound

DATA = b"hello blob\n" * 1000
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


def test_write_read_and_layout(content: ContentStore) -> None:
    desc = content.write(DATA, media_type="application/octet-stream")
    assert (desc.digest, desc.size) == (DIGEST, len(DATA))
    assert desc.media_type == "application/octet-stream"
    assert content.has(DIGEST) and content.read(DIGEST) == DATA
    assert content.path(DIGEST) == content.root / "blobs" / "sha256" / DIGEST[7:]
    assert list(content.digests()) == [DIGEST]
    assert os.listdir(content.root / "ingest") == []


def test_ingest_verifies_digest_and_size(content: ContentStore) -> None:
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch, match="expected sha256:0000"):
        content.ingest(io.BytesIO(DATA), expected=wrong)
    with pytest.raises(DigestMismatch, match="larger than"):
        content.ingest(io.BytesIO(DATA), size=10)
    with pytest.raises(DigestMismatch, match="expected 99999"):
        content.ingest(io.BytesIO(DATA), size=99999)
    assert list(content.digests()) == [] and os.listdir(content.root / "ingest") == []
    assert content.ingest(io.BytesIO(DATA), expected=DIGEST, size=len(DATA)).digest == DIGEST


def test_ingest_of_a_stored_blob_does_not_read_the_stream(content: ContentStore) -> None:
    content.write(DATA)

    class Unreadable(io.RawIOBase):
        def read(self, n: int = -1) -> bytes:
            raise AssertionError("read")

    assert content.ingest(Unreadable(), expected=DIGEST).size == len(DATA)  # type: ignore[arg-type]


def test_interrupted_write_leaves_nothing_visible(content: ContentStore) -> None:
    class Failing(io.RawIOBase):
        sent = 0

        def read(self, n: int = -1) -> bytes:
            self.sent += 1
            if self.sent > 3:
                raise ConnectionError("peer went away")
            return b"x" * 1000

    with pytest.raises(ConnectionError):
        content.ingest(Failing())  # type: ignore[arg-type]
    assert list(content.digests()) == [] and os.listdir(content.root / "ingest") == []


def test_stale_ingest_files_are_cleaned_but_live_ones_kept(content: ContentStore) -> None:
    stale = content.root / "ingest" / "dead-writer"
    stale.write_bytes(b"partial")
    os.utime(stale, (0, 0))
    assert content.clean_ingest() == 1 and not stale.exists()


def test_bad_digests_and_missing_blobs(content: ContentStore) -> None:
    for bad in ("sha256:abc", "md5:" + "0" * 32, "sha256:" + "A" * 64, "../../etc/passwd"):
        with pytest.raises(InvalidDigest):
            content.has(bad)
    with pytest.raises(NotFound):
        content.read(DIGEST)
    with pytest.raises(NotFound):
        content.path(DIGEST)
    with pytest.raises(NotFound):
        content.delete(DIGEST)


def test_delete(content: ContentStore) -> None:
    content.write(DATA)
    content.delete(DIGEST)
    assert not content.has(DIGEST)


def test_concurrent_writers_of_one_blob_in_threads(content: ContentStore) -> None:
    big = os.urandom(4 << 20)
    results, errors = [], []

    def writer() -> None:
        try:
            results.append(content.ingest(io.BytesIO(big)))
        except Exception as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len({r.digest for r in results}) == 1
    assert content.read(results[0].digest) == big
    assert os.listdir(content.root / "ingest") == []


def _write_in_process(root: str, data: bytes) -> str:
    return ContentStore(Path(root)).write(data).digest


def test_concurrent_writers_of_one_blob_in_processes(content: ContentStore) -> None:
    big = os.urandom(2 << 20)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        digests = pool.starmap(_write_in_process, [(str(content.root), big)] * 8)
    assert len(set(digests)) == 1 and content.read(digests[0]) == big
