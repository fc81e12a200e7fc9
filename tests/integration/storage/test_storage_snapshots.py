"""Snapshotters on the real kernel: overlay mounts and flattened copies behave alike."""

from __future__ import annotations

import errno
import io
import os
import shutil
import stat
from pathlib import Path

import pytest
from storage_kit import directory, fingerprint, reg, tar_bytes

from dockyard.image.rootfs import make_busybox_rootfs
from dockyard.storage.archive import write_tree
from dockyard.storage.changes import ADDED, DELETED, MODIFIED
from dockyard.storage.errors import AlreadyExists, InUse, NotFound, StorageError
from dockyard.storage.layers import Layer, LayerStore
from dockyard.storage.mounts import PAGE
from dockyard.storage.snapshot import (
    CopySnapshotter,
    OverlaySnapshotter,
    Snapshotter,
    choose_snapshotter,
)


@pytest.fixture(params=["overlay2", "vfs"])
def snaps(request: pytest.FixtureRequest, tmp_path: Path, layers: LayerStore) -> Snapshotter:
    return choose_snapshotter(tmp_path / "snapshots", layers, request.param)


@pytest.fixture
def image(tmp_path: Path, layers: LayerStore) -> Layer:
    """busybox, then a layer that deletes, replaces and makes a directory opaque."""
    rootfs = tmp_path / "rootfs"
    make_busybox_rootfs(rootfs)
    (rootfs / "var" / "cache").mkdir(parents=True)
    (rootfs / "var" / "cache" / "old").write_text("old")
    (rootfs / "etc" / "motd").write_text("hello")
    tree = io.BytesIO()
    write_tree(rootfs, tree)
    base = layers.add_tar(io.BytesIO(tree.getvalue()), None)
    top = tar_bytes(
        directory("etc"),
        reg("etc/.wh.motd", b""),
        reg("etc/hostname", b"box\n"),
        directory("var"),
        directory("var/cache"),
        reg("var/cache/.wh..wh..opq", b""),
        reg("var/cache/new", b"new"),
    )
    return layers.add_tar(io.BytesIO(top), base.chain_id)


def _mount(snaps: Snapshotter, key: str, target: Path, mounted: list[Path], ro: bool = False):
    target.mkdir(exist_ok=True)
    snaps.mount(key, target, readonly=ro)
    mounted.append(target)
    return target


def test_choice(tmp_path: Path, layers: LayerStore) -> None:
    assert isinstance(choose_snapshotter(tmp_path / "a", layers), OverlaySnapshotter)
    assert isinstance(choose_snapshotter(tmp_path / "b", layers, "copy"), CopySnapshotter)
    assert choose_snapshotter(tmp_path / "c", layers, "vfs").root == tmp_path / "c" / "vfs"
    with pytest.raises(StorageError, match="unknown storage driver"):
        choose_snapshotter(tmp_path / "d", layers, "zfs")


def test_merged_view_applies_whiteouts_and_opaque_dirs(
    snaps: Snapshotter, image: Layer, tmp_path: Path, mounted: list[Path]
) -> None:
    snaps.prepare("c1", image.chain_id)
    root = _mount(snaps, "c1", tmp_path / "mnt", mounted)
    assert (root / "bin" / "busybox").stat().st_size > 100_000
    assert not (root / "etc" / "motd").exists()
    assert (root / "etc" / "hostname").read_text() == "box\n"
    assert os.listdir(root / "var" / "cache") == ["new"]
    assert (root / "etc" / "passwd").read_text().startswith("root:")


def test_changes_diff_and_commit_roundtrip(
    snaps: Snapshotter, image: Layer, layers: LayerStore, tmp_path: Path, mounted: list[Path]
) -> None:
    snaps.prepare("c1", image.chain_id)
    root = _mount(snaps, "c1", tmp_path / "mnt", mounted)
    (root / "etc" / "passwd").write_text("changed\n")
    (root / "etc" / "group").unlink()
    (root / "srv" / "data").mkdir(parents=True)
    (root / "srv" / "data" / "f").write_bytes(os.urandom(3000))
    os.chmod(root / "srv" / "data" / "f", 0o4750)
    shutil.move(root / "home", root / "home2")  # EXDEV on overlay: copied, as mv does
    shutil.rmtree(root / "usr" / "sbin")
    shutil.rmtree(root / "var" / "cache")  # gone and made again: opaque on overlay
    (root / "var" / "cache").mkdir()
    (root / "var" / "cache" / "fresh").write_text("fresh")
    changes = dict(snaps.changes("c1"))
    assert changes["/var/cache/new"] == DELETED and changes["/var/cache/fresh"] == ADDED
    assert changes["/etc/passwd"] == MODIFIED and changes["/etc"] == MODIFIED
    assert changes["/etc/group"] == DELETED and changes["/usr/sbin"] == DELETED
    assert changes["/srv"] == ADDED and changes["/srv/data/f"] == ADDED
    assert changes["/home"] == DELETED and changes["/home2"] == ADDED
    assert not any(path.startswith("/usr/sbin/") for path in changes)
    want = fingerprint(root)

    blob = io.BytesIO()
    digests = snaps.diff("c1", blob)
    again = io.BytesIO()
    assert snaps.diff("c1", again) == digests and again.getvalue() == blob.getvalue()
    committed = layers.add_tar(io.BytesIO(blob.getvalue()), image.chain_id, digests.diff_id)
    snaps.prepare("c2", committed.chain_id)
    got = fingerprint(_mount(snaps, "c2", tmp_path / "mnt2", mounted))

    def comparable(fp: dict) -> dict:
        # Directory mtimes move as the tree is rebuilt; sub-second mtimes are not kept.
        return {
            k: (v[0], v[1], v[2], v[3], None if stat.S_ISDIR(v[0]) else v[4] // 10**9, v[5])
            for k, v in fp.items()
            if k != "."
        }

    assert comparable(got) == comparable(want)


def test_readonly_mount(snaps: Snapshotter, image: Layer, tmp_path: Path, mounted) -> None:
    snaps.prepare("c1", image.chain_id)
    root = _mount(snaps, "c1", tmp_path / "mnt", mounted, ro=True)
    with pytest.raises(OSError) as err:
        (root / "new").write_text("x")
    assert err.value.errno == errno.EROFS


def test_lifecycle_errors_and_remove(
    snaps: Snapshotter, image: Layer, tmp_path: Path, mounted: list[Path]
) -> None:
    snaps.prepare("c1", image.chain_id)
    snaps.prepare("empty", None)
    assert snaps.keys() == ["c1", "empty"] and snaps.parent("c1") == image.chain_id
    with pytest.raises(AlreadyExists):
        snaps.prepare("c1", image.chain_id)
    with pytest.raises(StorageError, match="invalid snapshot key"):
        snaps.prepare("../evil", None)
    with pytest.raises(NotFound):
        snaps.prepare("c3", "sha256:" + "4" * 64)
    with pytest.raises(NotFound):
        snaps.upper("nope")
    target = _mount(snaps, "c1", tmp_path / "mnt", mounted)
    with pytest.raises(InUse):
        snaps.remove("c1")
    snaps.unmount(target)
    snaps.unmount(target)  # unmounting twice is harmless
    snaps.remove("c1")
    root = _mount(snaps, "empty", tmp_path / "mnt-empty", mounted)
    (root / "file").write_text("x")
    assert snaps.changes("empty") == [("/file", ADDED)]
    assert snaps.keys() == ["empty"]


def test_image_with_130_layers_mounts(
    snaps: Snapshotter, layers: LayerStore, tmp_path: Path, mounted: list[Path]
) -> None:
    parent = None
    for i in range(130):
        data = tar_bytes(directory("layers"), reg(f"layers/{i:03d}", str(i).encode()))
        parent = layers.add_tar(io.BytesIO(data), parent).chain_id
    assert parent is not None
    links = [str(layers.root / link) for link in layers.lower_links(parent)]
    assert len(":".join(links)) > PAGE  # absolute paths alone would not fit one page
    snaps.prepare("deep", parent)
    root = _mount(snaps, "deep", tmp_path / "mnt", mounted)
    assert sorted(os.listdir(root / "layers")) == [f"{i:03d}" for i in range(130)]
    assert (root / "layers" / "000").read_text() == "0"
