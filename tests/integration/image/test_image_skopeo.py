"""Interoperability with skopeo (containers/image), an independent reader and writer of
docker-archive and oci-archive files: what we save it reads, what it writes we load."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from image_helpers import add_image

from dockyard.image.load import load
from dockyard.image.save import save


def skopeo(*args: str) -> None:
    if shutil.which("skopeo") is None:
        pytest.fail("skopeo is not installed: the interop tests need it (make install)")
    result = subprocess.run(
        ["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"skopeo {' '.join(args)}: {result.stderr}"


@pytest.fixture
def saved_archive(root, tmp_path: Path):
    image = add_image(root.images, [{"etc/a": "1"}, {"etc/b": "2"}], "app:1")
    path = tmp_path / "saved.tar"
    with open(path, "wb") as out:
        save(root.images, ["app:1"], out, root.scratch)
    return image, path


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_skopeo_reads_what_we_save(saved_archive, tmp_path, transport):
    image, path = saved_archive
    skopeo("copy", f"{transport}:{path}", f"dir:{tmp_path / 'dir'}")
    stored = {p.name for p in (tmp_path / "dir").iterdir()}
    assert image.id[7:] in stored  # the config, byte for byte
    assert {layer.diff_id[7:] for layer in image.layers} <= stored


def test_we_load_skopeo_docker_archive(saved_archive, make_root, tmp_path):
    image, path = saved_archive
    skopeo("copy", f"docker-archive:{path}", f"dir:{tmp_path / 'dir'}")
    written = tmp_path / "skopeo.tar"
    skopeo("copy", f"dir:{tmp_path / 'dir'}", f"docker-archive:{written}:example.com/team/app:2")
    fresh = make_root()
    with open(written, "rb") as f:
        result = load(fresh.images, f)
    assert result.messages == ["Loaded image: example.com/team/app:2"]
    copy = fresh.images.get("example.com/team/app:2")
    assert copy.id == image.id
    assert [x.diff_id for x in copy.layers] == [x.diff_id for x in image.layers]


def test_we_load_skopeo_oci_archive(saved_archive, make_root, tmp_path):
    image, path = saved_archive
    written = tmp_path / "skopeo-oci.tar"
    # skopeo compresses the layers on the way (gzip), as a push would.
    skopeo("copy", f"docker-archive:{path}", f"oci-archive:{written}:localhost:5000/app:oci")
    fresh = make_root()
    with open(written, "rb") as f:
        result = load(fresh.images, f)
    assert result.messages == ["Loaded image: localhost:5000/app:oci"]
    copy = fresh.images.get("localhost:5000/app:oci")
    assert [x.diff_id for x in copy.layers] == [x.diff_id for x in image.layers]
    assert copy.config.container_config == image.config.container_config
