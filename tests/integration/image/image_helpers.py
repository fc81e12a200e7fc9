"""Builders for the image tests: tar streams, configs and images made in memory."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from typing import Any

from dockyard.image.config import HistoryEntry, ImageConfig, new_config
from dockyard.image.platform import host_platform
from dockyard.image.reference import parse_tag_target
from dockyard.image.store import Blob, Image, ImageStore

Tree = dict[str, bytes | str | None]  # name -> file content, "->target" symlink, None directory


def tar_bytes(tree: Tree, *, gzipped: bool = False) -> bytes:
    """A tar of `tree` with fixed metadata, so equal trees give equal bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in tree.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif isinstance(content, str) and content.startswith("->"):
                info.type, info.linkname = tarfile.SYMTYPE, content[2:]
                tar.addfile(info)
            else:
                data = content.encode() if isinstance(content, str) else content
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    return gzip.compress(data, mtime=0) if gzipped else data


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_config(
    diff_ids: list[str], *, created: str = "2024-01-01T00:00:00Z", **doc: Any
) -> ImageConfig:
    history = [HistoryEntry(created=created, created_by=f"layer {i}") for i in range(len(diff_ids))]
    return new_config(
        diff_ids=diff_ids,
        platform=host_platform(),
        config=doc or {"Cmd": ["sh"]},
        history=history,
        created=created,
    )


def add_image(
    images: ImageStore,
    layers: list[Tree],
    *tags: str,
    parent: str | None = None,
    **config: Any,
) -> Image:
    """An image with one layer per tree (stored as plain tars), tagged with `tags`."""
    blobs = []
    for tree in layers:
        data = tar_bytes(tree)
        blobs.append(Blob(images.content.write(data).digest))
    image_config = make_config([b.digest for b in blobs], **config)
    return images.create(
        image_config, blobs, parent=parent, tags=[parse_tag_target(t) for t in tags]
    )


def archive(members: dict[str, bytes | str | None], *, gzipped: bool = False) -> bytes:
    """An image archive built by hand; values as in `tar_bytes`, dicts/lists become JSON."""
    return tar_bytes(
        {
            k: json.dumps(v).encode() if isinstance(v, dict | list) else v
            for k, v in members.items()
        },
        gzipped=gzipped,
    )
