"""Hostile archives: nothing may be created, changed or followed outside the layer.

Every test runs with openat2 and with the portable component walk. Each checks that the
host tree (a sentinel directory beside the layer, and a sentinel file in /tmp) is
untouched, and either that the archive was refused with a clear error or that what it
did landed inside the layer.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from storage_kit import device, directory, fingerprint, hardlink, reg, symlink, tar_bytes

from dockyard.storage.archive import Limits, apply_tar
from dockyard.storage.errors import LimitExceeded, UnsafeArchive

# Every name the archives below use, to spot one landing in the real /tmp.
ARCHIVE_NAMES = {
    *("a", "b", "d", "f", "s", "x", "big", "bin", "dev", "dir", "esc", "file", "host"),
    *("later", "link", "null", "pwned", "sub", "tmp", "victim", "zeros"),
}


@dataclass
class Env:
    host: Path  # sentinel directory outside the layer
    tmp_sentinel: Path  # sentinel file in /tmp
    layer: Path
    apply: Callable[..., object]


@pytest.fixture(params=[True, False], ids=["openat2", "walk"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    host = tmp_path / "host"
    (host / "dir").mkdir(parents=True)
    (host / "victim").write_text("original")
    (host / "dir" / "file").write_text("original")
    tmp_sentinel = Path(f"/tmp/dockyard-sentinel-{os.getpid()}-{id(tmp_path)}")
    tmp_sentinel.write_text("original")
    layer = tmp_path / "layer"
    layer.mkdir()
    before = fingerprint(host), fingerprint(tmp_sentinel)
    tmp_before = set(os.listdir("/tmp"))

    def apply(data: bytes, limits: Limits | None = None) -> object:
        kwargs = {"limits": limits} if limits else {}
        return apply_tar(io.BytesIO(data), layer, use_openat2=request.param, **kwargs)

    try:
        yield Env(host, tmp_sentinel, layer, apply)
        assert (fingerprint(host), fingerprint(tmp_sentinel)) == before, "host tree changed"
        # Other suites may create files in /tmp meanwhile: look for the archives' names.
        appeared = (set(os.listdir("/tmp")) - tmp_before) & ARCHIVE_NAMES
        assert appeared == set(), "an archive wrote into /tmp"
    finally:
        tmp_sentinel.unlink()


def test_dotdot_path_is_refused(env: Env) -> None:
    with pytest.raises(UnsafeArchive, match="climbs out"):
        env.apply(tar_bytes(reg("../host/victim", b"pwned")))


def test_dotdot_inside_a_deeper_path_is_refused(env: Env) -> None:
    with pytest.raises(UnsafeArchive, match="climbs out"):
        env.apply(tar_bytes(directory("a"), reg("a/../../host/pwned", b"pwned")))


def test_absolute_path_lands_inside(env: Env) -> None:
    env.apply(tar_bytes(reg(f"{env.host}/victim", b"pwned"), reg("/tmp/pwned", b"pwned")))
    assert (env.layer / str(env.host).lstrip("/") / "victim").read_bytes() == b"pwned"
    assert (env.layer / "tmp" / "pwned").read_bytes() == b"pwned"


def test_write_through_absolute_symlink_is_contained(env: Env) -> None:
    env.apply(tar_bytes(symlink("esc", str(env.host)), reg("esc/victim", b"pwned")))
    assert os.readlink(env.layer / "esc") == str(env.host)
    assert (env.layer / str(env.host).lstrip("/") / "victim").read_bytes() == b"pwned"


def test_write_through_relative_symlink_is_contained(env: Env) -> None:
    up = "../" * 40
    env.apply(tar_bytes(symlink("esc", f"{up}host"), reg("esc/victim", b"pwned")))
    assert (env.layer / "host" / "victim").read_bytes() == b"pwned"


def test_symlink_planted_by_an_earlier_layer_is_contained(env: Env) -> None:
    env.apply(tar_bytes(symlink("esc", str(env.host))))
    env.apply(tar_bytes(reg("esc/victim", b"pwned"), directory("esc/dir/sub")))
    assert (env.layer / str(env.host).lstrip("/") / "victim").read_bytes() == b"pwned"


def test_symlink_chain_is_contained(env: Env) -> None:
    env.apply(tar_bytes(symlink("a", "b"), symlink("b", "c/../../../.."), reg("a/tmp/pwned", b"x")))
    assert (env.layer / "tmp" / "pwned").read_bytes() == b"x"


def test_file_replacing_a_symlink_does_not_write_through_it(env: Env) -> None:
    target = str(env.host / "victim")
    env.apply(tar_bytes(symlink("f", target), reg("f", b"pwned", mode=0o666)))
    assert not (env.layer / "f").is_symlink()
    assert (env.layer / "f").read_bytes() == b"pwned"


def test_directory_entry_over_a_symlink_does_not_chmod_through_it(env: Env) -> None:
    env.apply(tar_bytes(symlink("d", str(env.host / "dir")), directory("d", mode=0o777)))
    assert (env.layer / "d").is_dir() and not (env.layer / "d").is_symlink()


def test_hardlink_climbing_out_is_refused(env: Env) -> None:
    with pytest.raises(UnsafeArchive, match="climbs out"):
        env.apply(tar_bytes(hardlink("link", "../host/victim")))


def test_hardlink_to_an_absolute_host_path_is_refused(env: Env) -> None:
    with pytest.raises(UnsafeArchive, match="not in the layer"):
        env.apply(tar_bytes(hardlink("link", str(env.host / "victim"))))


def test_hardlink_to_a_not_yet_seen_entry_is_refused(env: Env) -> None:
    with pytest.raises(UnsafeArchive, match="not in the layer"):
        env.apply(tar_bytes(hardlink("link", "later"), reg("later", b"x")))


def test_hardlink_through_a_symlink_stays_inside(env: Env) -> None:
    with pytest.raises(UnsafeArchive, match="not in the layer"):
        env.apply(tar_bytes(symlink("esc", str(env.host)), hardlink("link", "esc/victim")))


def test_hardlink_to_a_symlink_links_the_symlink_itself(env: Env) -> None:
    env.apply(
        tar_bytes(
            symlink("esc", str(env.host / "victim")),
            hardlink("link", "esc"),
            reg("link", b"pwned"),
        )
    )
    assert (env.layer / "link").read_bytes() == b"pwned"
    assert os.readlink(env.layer / "esc") == str(env.host / "victim")


def test_directory_replaced_by_symlink_is_contained(env: Env) -> None:
    env.apply(
        tar_bytes(
            directory("d"),
            reg("d/file", b"ok"),
            symlink("d", str(env.host / "dir")),
            reg("d/file", b"pwned"),
        )
    )
    assert os.readlink(env.layer / "d") == str(env.host / "dir")
    assert (env.layer / str(env.host).lstrip("/") / "dir" / "file").read_bytes() == b"pwned"


def test_whiteout_climbing_out_is_refused(env: Env) -> None:
    with pytest.raises(UnsafeArchive, match="climbs out"):
        env.apply(tar_bytes(reg("../host/.wh.victim", b"")))


def test_whiteout_through_a_symlink_is_contained(env: Env) -> None:
    env.apply(tar_bytes(symlink("esc", str(env.host)), reg("esc/.wh.victim", b"")))
    inside = env.layer / str(env.host).lstrip("/") / "victim"
    assert stat.S_ISCHR(inside.lstat().st_mode) and inside.lstat().st_rdev == 0


def test_opaque_marker_through_a_symlink_is_contained(env: Env) -> None:
    env.apply(tar_bytes(symlink("esc", str(env.host / "dir")), reg("esc/.wh..wh..opq", b"")))
    inside = env.layer / str(env.host).lstrip("/") / "dir"
    assert os.getxattr(inside, "trusted.overlay.opaque") == b"y"


def test_whiteout_naming_dotdot_is_refused(env: Env) -> None:
    with pytest.raises(UnsafeArchive):
        env.apply(tar_bytes(directory("a"), reg("a/.wh..", b"")))


def test_setuid_file_and_devices_stay_in_the_layer(env: Env) -> None:
    env.apply(
        tar_bytes(
            reg("bin/su", b"\x7fELF", mode=0o4755),
            device("dev/sda", tarfile.BLKTYPE, 8, 0),
            device("dev/mem", tarfile.CHRTYPE, 1, 1),
            symlink("esc", str(env.host)),
            device("esc/null", tarfile.CHRTYPE, 1, 3),
        )
    )
    assert (env.layer / "bin/su").stat().st_mode & 0o7777 == 0o4755
    assert stat.S_ISBLK((env.layer / "dev/sda").lstat().st_mode)
    assert (env.layer / "dev/mem").lstat().st_rdev == os.makedev(1, 1)
    assert stat.S_ISCHR((env.layer / str(env.host).lstrip("/") / "null").lstat().st_mode)


def test_symlink_loop_is_refused(env: Env) -> None:
    with pytest.raises(UnsafeArchive, match="symlinks"):
        env.apply(tar_bytes(symlink("a", "b"), symlink("b", "a"), reg("a/x", b"x")))


def test_path_through_a_regular_file_is_refused(env: Env) -> None:
    with pytest.raises(UnsafeArchive, match="not a directory"):
        env.apply(tar_bytes(reg("f", b"x"), reg("f/x", b"x")))


def test_root_entry_as_symlink_is_refused(env: Env) -> None:
    with pytest.raises(UnsafeArchive, match="root"):
        env.apply(tar_bytes(symlink(".", str(env.host))))


def test_overlay_xattrs_from_the_archive_are_dropped(env: Env) -> None:
    info, _ = directory("d")
    info.pax_headers = {
        "SCHILY.xattr.trusted.overlay.redirect": "/etc",
        "SCHILY.xattr.trusted.overlay.opaque": "y",
        "SCHILY.xattr.user.kept": "yes",
    }
    env.apply(tar_bytes((info, None)))
    assert os.listxattr(env.layer / "d") == ["user.kept"]


def test_nul_byte_in_a_pax_path_is_refused(env: Env) -> None:
    info, data = reg("x", b"x")
    info.pax_headers = {"path": "a\0/../../host/victim"}
    with pytest.raises(UnsafeArchive, match="NUL"):
        env.apply(tar_bytes((info, data)))


def test_absurd_file_size_is_refused_before_reading(env: Env) -> None:
    info, _ = reg("big")
    info.size = 1 << 45  # 32 TiB, declared in a header only
    raw = info.tobuf(tarfile.GNU_FORMAT)
    with pytest.raises(LimitExceeded, match="file size limit"):
        env.apply(raw + bytes(1024))


def test_entry_count_is_bounded(env: Env) -> None:
    data = tar_bytes(*(reg(f"f{i}", b"") for i in range(200)))
    with pytest.raises(LimitExceeded, match="more than 100 entries"):
        env.apply(data, Limits(max_entries=100))


def test_decompression_bomb_is_bounded(env: Env) -> None:
    bomb = gzip.compress(tar_bytes(reg("zeros", bytes(64 << 20))), 9)
    assert len(bomb) < 1 << 20
    with pytest.raises(LimitExceeded, match="larger than the limit"):
        env.apply(bomb, Limits(max_total_size=8 << 20))


def test_huge_pax_header_is_refused_before_buffering(env: Env) -> None:
    info, _ = reg("x")
    info.type = tarfile.XHDTYPE
    info.size = 1 << 30
    with pytest.raises(LimitExceeded, match="header record"):
        env.apply(info.tobuf(tarfile.USTAR_FORMAT) + bytes(4096))


def test_long_path_is_refused(env: Env) -> None:
    with pytest.raises(LimitExceeded, match="path longer"):
        env.apply(tar_bytes(reg("a/" * 3000 + "x", b"")))


def test_truncated_archive_is_refused(env: Env) -> None:
    data = tar_bytes(reg("f", b"y" * 10000))
    with pytest.raises(UnsafeArchive, match="truncated"):
        env.apply(data[:3000])
