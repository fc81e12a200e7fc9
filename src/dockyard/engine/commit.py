"""`docker commit`: a container's changes as a new layer on its image.

The snapshot's diff is written as a plain tar (its digest is the diff ID, as for imports),
ingested into the content store, and registered with a config made from the container's
config, the request's overrides and Dockerfile-style changes; the container's image becomes
the new image's parent.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.engine.errors import EngineError
from dockyard.engine.images import scratch_dir
from dockyard.image.changes import apply_changes
from dockyard.image.config import ImageConfig, now_rfc3339, parse_config
from dockyard.image.manifest import OCI_LAYER, encode
from dockyard.image.reference import Reference, parse_tag_target
from dockyard.image.store import Blob, Image

if TYPE_CHECKING:
    from dockyard.engine.engine import Engine

DOCKER_VERSION = "20.10.24"  # what configs made here claim, as dockerd writes its own


@dataclass(frozen=True)
class CommitRequest:
    container: str
    repo: str = ""
    tag: str = ""
    comment: str = ""
    author: str = ""
    changes: Sequence[str] = ()
    pause: bool = True
    config: dict | None = None  # overrides from the request body


def commit_target(repo: str, tag: str) -> Reference | None:
    if not repo:
        return None
    ref = parse_tag_target(repo)
    return ref.with_tag(tag) if tag else ref


async def commit(engine: Engine, request: CommitRequest) -> Image:
    record = engine.containers.get(request.container)
    target = commit_target(request.repo, request.tag)
    # Check the changes before the slow part, as dockerd does.
    config = apply_changes(_merged_config(record, request.config), request.changes)
    state = record["State"]
    paused = request.pause and state["Running"] and not state["Paused"]
    if paused:
        await engine.runtime_command(record, "pause")
    try:
        image = await asyncio.to_thread(_commit, engine, record, config, request, target)
    finally:
        if paused:
            await engine.runtime_command(record, "resume")
    engine.events.publish(
        "container",
        "commit",
        record["Id"],
        {
            "comment": request.comment,
            "imageID": image.id,
            "imageRef": target.familiar if target else "",
            "image": record["Config"].get("Image") or record["Image"],
            "name": record["Name"].lstrip("/"),
            **(record["Config"].get("Labels") or {}),
        },
    )
    return image


def _merged_config(record: dict, overrides: dict | None) -> dict:
    """The body's config where it sets a field, the container's elsewhere (dockerd's merge)."""
    merged = dict(record["Config"])
    for key, value in (overrides or {}).items():
        if value not in (None, "", [], {}):
            merged[key] = value
    return merged


def _commit(
    engine: Engine,
    record: dict,
    config: dict,
    request: CommitRequest,
    target: Reference | None,
) -> Image:
    parent = engine.images.get(record["Image"])
    with tempfile.TemporaryDirectory(dir=scratch_dir(engine), prefix="commit-") as tmp:
        layer = Path(tmp) / "layer.tar"
        empty = not engine.snapshots.changes(record["Id"])
        blobs = [Blob(layer.blob_digest, layer.blob_media_type) for layer in parent.layers]
        diff_ids = list(parent.config.diff_ids)
        new_blob = None
        if not empty:
            with open(layer, "wb") as out:
                digests = engine.snapshots.diff(record["Id"], out, compression=None)
            with open(layer, "rb") as stream:
                new_blob = engine.images.content.ingest(
                    stream, expected=digests.digest, media_type=OCI_LAYER
                ).digest
            blobs.append(Blob(new_blob, OCI_LAYER))
            diff_ids.append(digests.diff_id)
        image_config = _image_config(parent, record, config, request, diff_ids, empty)
        try:
            return engine.images.create(
                image_config, blobs, parent=parent.id, tags=[target] if target else []
            )
        except BaseException:
            if new_blob is not None:
                engine.images.discard([new_blob])
            raise


def _image_config(
    parent: Image,
    record: dict,
    config: dict,
    request: CommitRequest,
    diff_ids: list[str],
    empty: bool,
) -> ImageConfig:
    created = now_rfc3339()
    entry: dict = {"created": created, "created_by": _created_by(record)}
    if request.author:
        entry["author"] = request.author
    if request.comment:
        entry["comment"] = request.comment
    if empty:
        entry["empty_layer"] = True
    doc = {
        "architecture": parent.config.platform.architecture,
        "author": request.author,
        "comment": request.comment,
        "config": config,
        "container": record["Id"],
        "container_config": record["Config"],
        "created": created,
        "docker_version": DOCKER_VERSION,
        "history": [*parent.config.doc.get("history", []), entry],
        "os": parent.config.platform.os,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    if parent.config.platform.variant:
        doc["variant"] = parent.config.platform.variant
    doc = {key: value for key, value in doc.items() if value != ""}
    try:
        return parse_config(encode(doc))
    except ValueError as error:
        raise EngineError(f"cannot commit: {error}") from None


def _created_by(record: dict) -> str:
    """dockerd records the container's Cmd (not its entrypoint)."""
    return " ".join(record["Config"].get("Cmd") or [])
