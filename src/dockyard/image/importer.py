"""`docker import`: a root filesystem tarball becomes a one-layer image."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from ..storage.compression import open_decompressed
from .changes import apply_changes
from .config import HistoryEntry, new_config, now_rfc3339
from .manifest import OCI_LAYER
from .platform import Platform, host_platform
from .reference import Reference
from .store import Blob, Image, ImageStore


def import_rootfs(
    store: ImageStore,
    source: BinaryIO | Path,
    *,
    changes: Iterable[str] = (),
    message: str = "",
    platform: Platform | None = None,
    tags: Iterable[Reference] = (),
    created_by: str = "",
) -> Image:
    """Import a tar file or stream (plain, gzip, zstd, xz or bzip2) as an image, with
    Dockerfile-style `changes` applied to an empty config. `message` becomes the config's and
    the history's comment, as in Docker."""
    # Validate the changes before reading a possibly large stream.
    config = apply_changes({}, changes)
    # Stored uncompressed, as Docker does: its digest is the diff ID, and save needs no
    # decompression.
    with contextlib.ExitStack() as stack:
        stream = stack.enter_context(open(source, "rb")) if isinstance(source, Path) else source
        plain = stack.enter_context(open_decompressed(stream))
        blob = store.content.ingest(plain, media_type=OCI_LAYER)
    created = now_rfc3339()
    image_config = new_config(
        diff_ids=[blob.digest],
        platform=platform or host_platform(),
        config=config,
        history=[HistoryEntry(created=created, created_by=created_by, comment=message)],
        created=created,
        comment=message,
    )
    try:
        return store.create(image_config, [Blob(blob.digest, OCI_LAYER)], tags=tags)
    except BaseException:
        store.discard([blob.digest])
        raise
