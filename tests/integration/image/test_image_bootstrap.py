"""Images made without a registry: busybox from busybox-static, Debian from debootstrap."""

from __future__ import annotations

import io
import stat
import subprocess
import tarfile

import pytest

from dockyard.image.bootstrap import bootstrap
from dockyard.image.errors import InvalidArgument
from dockyard.image.export import export_snapshot
from dockyard.image.rootfs import unmount_under
from dockyard.storage.snapshot import choose_snapshotter

PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def layer_tar(root, image) -> tarfile.TarFile:
    data = root.content.read(image.layers[0].blob_digest)
    return tarfile.open(fileobj=io.BytesIO(data))


def applets() -> list[str]:
    listing = subprocess.run(["busybox", "--list-full"], capture_output=True, text=True).stdout
    return listing.split()


def test_busybox_image(root):
    image = bootstrap(root.images, "busybox", root.scratch)
    assert image.repo_tags == ("busybox:latest",)
    assert image.config.container_config == {"Env": [PATH], "Cmd": ["sh"]}
    assert "busybox" in image.config.history[0].created_by
    with layer_tar(root, image) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["bin/busybox"].isfile()
        assert members["bin/sh"].issym() and members["bin/sh"].linkname == "/bin/busybox"
        assert set(applets()) <= set(members)  # the full applet set
        assert stat.S_IMODE(members["tmp"].mode) == 0o1777
        assert b"root:x:0:0" in tar.extractfile("etc/passwd").read()
        assert b"nogroup" in tar.extractfile("etc/group").read()
    assert list(root.scratch.iterdir()) == []  # the rootfs and tar were temporary


def test_bootstrap_refuses_unknown_images(root):
    for what in ("alpine", "busybox:1.36", "debian:Bad Suite"):
        with pytest.raises(InvalidArgument):
            bootstrap(root.images, what, root.scratch)


@pytest.mark.slow
def test_debian_image(root):
    """debootstrap --variant=minbase from the host's apt mirror: 1-3 minutes."""
    image = bootstrap(root.images, "debian:bookworm", root.scratch)
    assert image.repo_tags == ("debian:bookworm",)
    assert image.config.container_config == {"Env": [PATH], "Cmd": ["bash"]}
    snapshots = choose_snapshotter(root.path / "snapshots", root.layers)
    snapshots.prepare("debian", image.top_layer)
    try:
        out = io.BytesIO()
        export_snapshot(snapshots, "debian", out, root.scratch)
    finally:
        unmount_under(root.path)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        names = set(tar.getnames())
        assert {"usr/bin/apt-get", "usr/bin/bash", "usr/bin/dpkg"} <= names
        assert "bookworm" in tar.extractfile("etc/os-release").read().decode()
        assert not any(n.startswith("var/lib/apt/lists/") and not n.endswith("lock") for n in names)
        assert not [n for n in names if n.startswith("dev/")]
    assert list(root.scratch.iterdir()) == []
