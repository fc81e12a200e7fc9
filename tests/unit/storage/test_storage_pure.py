"""Pure logic of dockyard.storage: digests, chain IDs, paths, tar parsing, options."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from dockyard.storage import mounts
from dockyard.storage.changes import as_docker
from dockyard.storage.compression import detect, open_compressor, open_decompressed
from dockyard.storage.digest import check_digest
from dockyard.storage.errors import InvalidDigest, LimitExceeded, UnsafeArchive
from dockyard.storage.layers import chain_id
from dockyard.storage.limits import DEFAULT_LIMITS, Limits
from dockyard.storage.saferoot import clean_path
from dockyard.storage.tarreader import TarReader

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


def test_check_digest() -> None:
    assert check_digest(D1) == "a" * 64
    for bad in ("", "sha256:", D1.upper(), D1 + "0", "sha512:" + "a" * 128, None):
        with pytest.raises(InvalidDigest):
            check_digest(bad)  # type: ignore[arg-type]


def test_chain_id_follows_the_oci_definition() -> None:
    assert chain_id(None, D1) == D1
    expected = "sha256:" + hashlib.sha256(f"{D1} {D2}".encode()).hexdigest()
    assert chain_id(D1, D2) == expected
    with pytest.raises(InvalidDigest):
        chain_id("nope", D2)


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        (b"a/b", b"a/b"),
        (b"./a//b/", b"a/b"),
        (b"/abs/path", b"abs/path"),
        (b"a/../b", b"b"),
        (b".", b""),
        (b"./", b""),
        (b"a/./b/..", b"a"),
    ],
)
def test_clean_path(name: bytes, clean: bytes) -> None:
    assert clean_path(name) == clean


@pytest.mark.parametrize("name", [b"..", b"../x", b"a/../../x", b"/../x", b"a\0b"])
def test_clean_path_refuses(name: bytes) -> None:
    with pytest.raises(UnsafeArchive):
        clean_path(name)


def _tar(*infos: tuple[tarfile.TarInfo, bytes], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in infos:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _file(name: str, data: bytes = b"") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _read_all(data: bytes, limits: Limits = DEFAULT_LIMITS) -> list[tuple]:
    reader = TarReader(io.BytesIO(data), limits)
    result = []
    for entry in reader:
        content = b""
        while chunk := reader.read_data(3):
            content += chunk
        result.append((entry.name, entry.type, content, entry.xattrs, entry.mtime_ns))
    reader.drain()
    assert reader.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert reader.total == len(data)
    return result


def test_reader_long_names_in_pax_and_gnu_forms() -> None:
    long = "d/" * 80 + "file"
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        assert _read_all(_tar(_file(long, b"content"), fmt=fmt))[0][:3] == (
            long.encode(),
            tarfile.REGTYPE,
            b"content",
        )


def test_reader_pax_xattrs_binary_names_and_subsecond_mtime() -> None:
    info, data = _file("f", b"x")
    info.pax_headers = {
        "SCHILY.xattr.security.capability": b"\x01\x00\xff".decode("utf-8", "surrogateescape"),
        "mtime": "1500000000.123456789",
        "path": b"caf\xe9".decode("utf-8", "surrogateescape"),
    }
    name, _, _, xattrs, mtime_ns = _read_all(_tar((info, data)))[0]
    assert name == b"caf\xe9"
    assert xattrs == {"security.capability": b"\x01\x00\xff"}
    assert mtime_ns == 1_500_000_000_123_456_789


def test_reader_applies_global_pax_records_but_not_paths() -> None:
    glob = tarfile.TarInfo("global")
    glob.type = tarfile.XGLTYPE
    records = b"18 path=ignored/x\n20 SCHILY.xattr.a=1\n"
    glob.size = len(records)
    raw = glob.tobuf(tarfile.USTAR_FORMAT) + records + bytes(512 - len(records))
    data = raw + _tar(_file("one"), _file("two"))
    entries = _read_all(data)
    assert [e[0] for e in entries] == [b"one", b"two"]
    assert all(e[3] == {"a": b"1"} for e in entries)


def test_reader_limits() -> None:
    data = _tar(_file("a", b"12345"), _file("b", b"12345"))
    with pytest.raises(LimitExceeded):
        _read_all(data, Limits(max_entries=1))
    with pytest.raises(LimitExceeded):
        _read_all(data, Limits(max_file_size=4))
    with pytest.raises(LimitExceeded):
        _read_all(_tar(_file("x" * 200)), Limits(max_path_length=100))


def test_reader_rejects_garbage_and_sparse() -> None:
    with pytest.raises(UnsafeArchive, match="invalid tar header"):
        _read_all(b"\x01" * 1024)
    sparse = tarfile.TarInfo("s")
    sparse.type = tarfile.GNUTYPE_SPARSE
    with pytest.raises(UnsafeArchive, match="sparse"):
        _read_all(sparse.tobuf(tarfile.GNU_FORMAT) + bytes(1024))


def test_reader_accepts_end_of_stream_at_a_header_boundary() -> None:
    data = _tar(_file("a", b"1"))
    without_marker = data[:1024]  # header + one data block, no zero blocks
    assert [e[0] for e in _read_all(without_marker)] == [b"a"]


def test_compression_detection_and_roundtrip() -> None:
    assert detect(b"\x1f\x8b\x08") == "gzip"
    assert detect(b"\x28\xb5\x2f\xfd") == "zstd"
    assert detect(b"ustar") is None
    for kind in (None, "gzip", "zstd"):
        out = io.BytesIO()
        writer = open_compressor(out, kind)
        writer.write(b"payload" * 1000)
        writer.close()
        assert detect(out.getvalue()) == kind
        assert open_decompressed(io.BytesIO(out.getvalue())).read() == b"payload" * 1000


def test_corrupt_gzip_is_an_unsafe_archive() -> None:
    out = io.BytesIO()
    writer = open_compressor(out, "gzip")
    writer.write(b"x" * 100000)
    writer.close()
    broken = out.getvalue()[:20] + b"\xff" * 50 + out.getvalue()[70:]
    with pytest.raises(UnsafeArchive, match="corrupt"):
        open_decompressed(io.BytesIO(broken)).read()


def test_overlay_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mounts, "_kernel_default_on", lambda name: name == "metacopy")
    opts = mounts.overlay_options(["l/A", "l/B"], Path("/s/up"), Path("/s/work"))
    assert opts == "lowerdir=l/A:l/B,upperdir=/s/up,workdir=/s/work,metacopy=off"


def test_changes_as_docker_paths() -> None:
    assert as_docker([(b"etc/passwd", 0), (b"caf\xe9", 1)]) == [
        ("/etc/passwd", 0),
        ("/caf\udce9", 1),
    ]
