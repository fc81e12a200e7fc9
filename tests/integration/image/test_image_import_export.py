"""`docker import` of rootfs tarballs and `docker export` of a container's merged tree."""

from __future__ import annotations

import gzip
import io
import lzma
import os
import tarfile

import pytest
from image_helpers import add_image, sha256, tar_bytes

from dockyard.image.errors import InvalidArgument, InvalidImage
from dockyard.image.export import export_snapshot
from dockyard.image.importer import import_rootfs
from dockyard.image.platform import Platform, host_platform
from dockyard.image.reference import parse_tag_target
from dockyard.image.rootfs import unmount_under
from dockyard.storage.errors import UnsafeArchive
from dockyard.storage.snapshot import choose_snapshotter

ROOTFS = {"bin": None, "bin/tool": "#!/bin/sh\necho hi\n", "etc": None, "etc/hostname": "box\n"}


class Pipe(io.RawIOBase):
    """A non-seekable stream, like a request body."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        chunk = self._data.read(min(len(buffer), 7000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("compress", [None, gzip.compress, lzma.compress])
def test_import_with_changes(root, compress):
    plain = tar_bytes(ROOTFS)
    data = compress(plain) if compress else plain
    image = import_rootfs(
        root.images,
        Pipe(data),
        changes=[
            'CMD ["/bin/tool"]',
            "ENV GREETING=hello PATH=/bin",
            "EXPOSE 8080/tcp",
            "LABEL maintainer=me",
            "USER nobody",
            "VOLUME /data",
            "WORKDIR /srv",
            'ENTRYPOINT ["/bin/sh", "-c"]',
        ],
        message="imported for a test",
        tags=[parse_tag_target("imported:v1")],
    )
    assert image.repo_tags == ("imported:v1",)
    assert image.config.container_config == {
        "Cmd": ["/bin/tool"],
        "Env": ["GREETING=hello", "PATH=/bin"],
        "ExposedPorts": {"8080/tcp": {}},
        "Labels": {"maintainer": "me"},
        "User": "nobody",
        "Volumes": {"/data": {}},
        "WorkingDir": "/srv",
        "Entrypoint": ["/bin/sh", "-c"],
    }
    assert image.config.doc["comment"] == "imported for a test"
    assert image.config.platform == host_platform()
    [entry] = image.config.history
    assert entry.comment == "imported for a test" and entry.created == image.config.created
    # One layer, stored uncompressed: its digest is the diff ID.
    [layer] = image.layers
    assert layer.diff_id == layer.blob_digest == sha256(plain)
    assert (root.layers.get(layer.chain_id).path / "bin" / "tool").read_text().endswith("hi\n")
    assert root.blobs() == {image.id, sha256(plain)}


def test_import_platform_and_no_tag(root):
    image = import_rootfs(
        root.images, io.BytesIO(tar_bytes(ROOTFS)), platform=Platform("linux", "arm64")
    )
    assert image.repo_tags == ()
    assert image.config.doc["architecture"] == "arm64"
    assert image.config.container_config == {}


def test_bad_changes_are_refused_before_reading(root):
    stream = io.BytesIO(tar_bytes(ROOTFS))
    with pytest.raises(InvalidArgument, match="run is not a valid change command"):
        import_rootfs(root.images, stream, changes=["RUN rm -rf /"])
    assert stream.tell() == 0
    assert root.blobs() == set()


def test_hostile_rootfs_leaves_nothing(root, tmp_path):
    evil = tar_bytes({"../../escape": "x"})
    with pytest.raises((UnsafeArchive, InvalidImage)):
        import_rootfs(root.images, io.BytesIO(evil))
    assert root.blobs() == set()
    assert root.layers.chain_ids() == []
    assert not (tmp_path / "escape").exists()


@pytest.fixture
def snapshots(root):
    snapshotter = choose_snapshotter(root.path / "snapshots", root.layers)
    yield snapshotter
    unmount_under(root.path)


def test_export_is_the_merged_tree(root, snapshots, tmp_path):
    image = add_image(root.images, [ROOTFS, {"etc": None, "etc/motd": "layer two\n"}], "app")
    snapshots.prepare("c1", image.top_layer)
    rootfs = tmp_path / "mnt"
    rootfs.mkdir()
    snapshots.mount("c1", rootfs)
    try:
        (rootfs / "etc" / "new").write_text("container\n")
        os.unlink(rootfs / "etc" / "hostname")
    finally:
        snapshots.unmount(rootfs)
    out = io.BytesIO()
    export_snapshot(snapshots, "c1", out, root.scratch)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        names = tar.getnames()
        assert tar.extractfile("etc/new").read() == b"container\n"
        assert tar.extractfile("etc/motd").read() == b"layer two\n"
    assert sorted(names) == ["bin", "bin/tool", "etc", "etc/motd", "etc/new"]
    assert not any(".wh." in name for name in names)
    assert list(root.scratch.iterdir()) == []  # unmounted and removed
    snapshots.remove("c1")


def test_import_from_a_file(root, tmp_path):
    path = tmp_path / "rootfs.tar.gz"
    path.write_bytes(gzip.compress(tar_bytes(ROOTFS)))
    image = import_rootfs(root.images, path, tags=[parse_tag_target("fromfile")])
    assert image.layers[0].diff_id == sha256(tar_bytes(ROOTFS))
