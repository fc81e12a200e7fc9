"""apply_tar and the tar writers on a real file system: metadata survives, formats agree."""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard
from isal import igzip
from storage_kit import device, directory, fingerprint, hardlink, reg, symlink, tar_bytes

from dockyard.storage.archive import apply_tar, write_diff, write_tree
from dockyard.storage.treewriter import OPAQUE_XATTR

CAP = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_raw+ep


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A tree with every kind of entry and metadata a layer may hold."""
    root = tmp_path / "source"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    os.link(root / "etc" / "passwd", root / "etc" / "passwd-")
    (root / "bin").mkdir()
    ping = root / "bin" / "ping"
    ping.write_bytes(os.urandom(5000))
    os.chown(ping, 0, 0)
    os.chmod(ping, 0o4755)
    os.setxattr(ping, "security.capability", CAP)
    os.setxattr(ping, "user.note", b"\xff\x00binary")
    (root / "home" / "user").mkdir(parents=True)
    os.chown(root / "home" / "user", 1000, 1000)
    os.chmod(root / "home" / "user", 0o700)
    (root / "home" / "user" / "ünïcode name").write_text("x")
    os.symlink("/etc/passwd", root / "abs-link")
    os.symlink("../etc", root / "home" / "rel-link")
    os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(root / "fifo", 0o600)
    (root / "sticky").mkdir(mode=0o1777)
    os.chmod(root / "sticky", 0o1777)
    (root / "empty").write_bytes(b"")
    for path in [*root.rglob("*"), root]:
        os.utime(path, ns=(1_500_000_000_123_456_789,) * 2, follow_symlinks=False)
    return root


def gnu_tar(root: Path) -> bytes:
    return subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "-C", str(root), "-cf", "-", "."],
        check=True,
        capture_output=True,
    ).stdout


@pytest.mark.parametrize(
    "compress",
    [
        lambda b: b,
        lambda b: igzip.compress(b),
        lambda b: zstandard.ZstdCompressor().compress(b),
        lambda b: lzma.compress(b),
    ],
    ids=["plain", "gzip", "zstd", "xz"],
)
def test_gnu_tar_roundtrip_keeps_all_metadata(source: Path, tmp_path: Path, compress) -> None:
    plain = gnu_tar(source)
    dest = tmp_path / "dest"
    dest.mkdir()
    applied = apply_tar(io.BytesIO(compress(plain)), dest)
    assert applied.diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    assert fingerprint(dest) == fingerprint(source)
    assert os.getxattr(dest / "bin" / "ping", "security.capability") == CAP


def test_write_tree_roundtrip_and_gnu_tar_reads_it(source: Path, tmp_path: Path) -> None:
    out = io.BytesIO()
    write_tree(source, out)
    dest = tmp_path / "dest"
    dest.mkdir()
    apply_tar(io.BytesIO(out.getvalue()), dest)
    # Whole-second mtimes are the price of reproducible output.
    want = {k: (*v[:4], v[4] // 10**9, *v[5:]) for k, v in fingerprint(source).items()}
    got = {k: (*v[:4], v[4] // 10**9, *v[5:]) for k, v in fingerprint(dest).items()}
    del want["."], got["."]
    assert got == want
    listing = subprocess.run(
        ["tar", "-tvf", "-"], input=out.getvalue(), check=True, capture_output=True
    ).stdout.decode()
    assert "bin/ping" in listing and "etc/passwd- link to etc/passwd" in listing


def test_whiteouts_become_overlay_whiteouts(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    apply_tar(
        io.BytesIO(
            tar_bytes(
                directory("a"),
                reg("a/.wh.gone", b""),
                directory("b"),
                reg("b/.wh..wh..opq", b""),
                reg("b/new", b"n"),
                reg(".wh.top", b""),
                reg("a/.wh..wh.plnk", b""),  # aufs hardlink dir: ignored
            )
        ),
        dest,
    )
    for path in (dest / "a" / "gone", dest / "top"):
        st = path.lstat()
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(dest / "b", OPAQUE_XATTR) == b"y"
    assert sorted(os.listdir(dest / "a")) == ["gone"]


def test_later_entries_replace_earlier_ones(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    apply_tar(
        io.BytesIO(
            tar_bytes(
                directory("d"),
                reg("d/f", b"1"),
                reg("d", b"now a file"),
                reg("x", b"1"),
                directory("x"),
                reg("x/y", b"2"),
            )
        ),
        dest,
    )
    assert (dest / "d").read_bytes() == b"now a file"
    assert (dest / "x" / "y").read_bytes() == b"2"


def test_missing_parents_are_created_and_dir_mtimes_set_last(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    apply_tar(
        io.BytesIO(
            tar_bytes(directory("a", mtime=1000), reg("a/b/c/file", b"x"), reg("a/f", b"y"))
        ),
        dest,
    )
    assert (dest / "a").stat().st_mtime == 1000
    assert (dest / "a" / "b").stat().st_mode & 0o777 == 0o755


def test_hardlinks_and_devices_from_tarfile_entries(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    apply_tar(
        io.BytesIO(
            tar_bytes(
                reg("f", b"data"),
                hardlink("g", "f"),
                hardlink("./h", "./f"),
                device("tty", tarfile.CHRTYPE, 5, 0),
                symlink("s", "f"),
            )
        ),
        dest,
    )
    assert (dest / "f").stat().st_nlink == 3
    assert (dest / "tty").lstat().st_rdev == os.makedev(5, 0)


def test_write_diff_converts_whiteouts_and_is_reproducible(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "etc").mkdir(parents=True)
    (upper / "etc" / "hosts").write_text("x")
    os.mknod(upper / "etc" / "gone", stat.S_IFCHR, os.makedev(0, 0))
    (upper / "var").mkdir()
    os.setxattr(upper / "var", OPAQUE_XATTR, b"y")
    (upper / "var" / "new").write_text("n")
    os.setxattr(upper / "etc", "trusted.overlay.origin", b"junk")  # overlay-internal
    first, second = io.BytesIO(), io.BytesIO()
    digests = write_diff(upper, first), write_diff(upper, second)
    assert digests[0] == digests[1] and first.getvalue() == second.getvalue()
    assert digests[0].size == len(first.getvalue())
    assert digests[0].digest == "sha256:" + hashlib.sha256(first.getvalue()).hexdigest()
    plain = igzip.decompress(first.getvalue())
    assert digests[0].diff_id == "sha256:" + hashlib.sha256(plain).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "etc",
        "etc/.wh.gone",
        "etc/hosts",
        "var",
        "var/.wh..wh..opq",
        "var/new",
    ]
    assert all(not m.pax_headers.get("SCHILY.xattr.trusted.overlay.origin") for m in members)
    assert all(m.uname == "" and m.mtime == int(m.mtime) for m in members)


def test_write_diff_of_identical_trees_made_apart_is_identical(tmp_path: Path) -> None:
    digests = []
    for name in ("one", "two"):
        upper = tmp_path / name
        (upper / "b").mkdir(parents=True)
        (upper / "b" / "z").write_text("z")
        (upper / "a").write_text("a")
        for path in [*upper.rglob("*")]:
            os.utime(path, (1_000_000, 1_000_000))
        for compression in (None, "gzip", "zstd"):
            digests.append((name, compression, write_diff(upper, io.BytesIO(), compression)))
    by_compression = {}
    for _, compression, d in digests:
        by_compression.setdefault(compression, set()).add(d)
    assert all(len(v) == 1 for v in by_compression.values())
