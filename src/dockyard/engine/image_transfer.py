"""Images in and out as archives: load, save, import, container export and bootstrap.

The blocking parts (tar, hashing, unpacking) run in a thread; events are published back on
the event loop, where the event bus lives.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, BinaryIO

from dockyard.engine.errors import InvalidArgument
from dockyard.engine.images import publish, scratch_dir
from dockyard.image.bootstrap import Maker
from dockyard.image.export import export_snapshot
from dockyard.image.importer import import_rootfs
from dockyard.image.load import load
from dockyard.image.reference import Reference, parse_tag_target
from dockyard.image.save import save, select_images
from dockyard.image.store import Image
from dockyard.storage.archive import write_tree

if TYPE_CHECKING:
    from dockyard.engine.engine import Engine

IMPORT_FROM_STDIN = "-"


async def load_images(engine: Engine, stream: BinaryIO) -> list[str]:
    """`docker load`: every image of the archive; returns the lines Docker prints."""
    result = await asyncio.to_thread(load, engine.images, stream)
    for image in result.images:
        publish(engine, "load", image.id)
    return result.messages


def saved_ids(engine: Engine, names: Sequence[str]) -> list[str]:
    """The images `docker save NAMES` writes; raises NotFound before any byte is sent."""
    if not names:
        raise InvalidArgument("no images specified")
    return [entry.image.id for entry in select_images(engine.images, names)]


def save_images(engine: Engine, names: Sequence[str], out: BinaryIO) -> None:
    """Blocking: the docker-archive of `names` to `out`."""
    save(engine.images, names, out, scratch_dir(engine))


def publish_saved(engine: Engine, image_ids: Sequence[str]) -> None:
    for image_id in image_ids:
        publish(engine, "save", image_id)


def import_target(repo: str, tag: str) -> Reference | None:
    """The name `docker import` gives (repo, then tag, as dockerd combines them)."""
    if not repo:
        return None
    ref = parse_tag_target(repo)
    return ref.with_tag(tag) if tag else ref


async def import_image(
    engine: Engine,
    source: str,
    stream: BinaryIO,
    *,
    target: Reference | None,
    changes: Sequence[str],
    message: str,
) -> Image:
    if source != IMPORT_FROM_STDIN:
        raise InvalidArgument(
            f"importing from a URL is not supported by this daemon ({source}): "
            "send the archive as the request body (docker import - or a local file)"
        )
    image = await asyncio.to_thread(
        import_rootfs,
        engine.images,
        stream,
        changes=changes,
        message=message or f"Imported from {source}",
        tags=[target] if target else [],
    )
    if target is not None:
        publish(engine, "tag", image.id, target.familiar)
    publish(engine, "import", image.id)
    return image


def export_container(engine: Engine, record: dict, out: BinaryIO) -> None:
    """Blocking: the container's merged root filesystem as a tar. A running container's
    mounted rootfs is read as it is; a stopped one is mounted for the time of the export."""
    rootfs = engine.lifecycle.directory(record["Id"]) / "rootfs"
    if record["State"]["Running"] and os.path.ismount(rootfs):
        write_tree(rootfs, out)
    else:
        export_snapshot(engine.snapshots, record["Id"], out, scratch_dir(engine))


async def bootstrap_image(engine: Engine, make: Maker) -> Image:
    """`dockyard image bootstrap`, with the maker `bootstrapper` gave for the name (checked
    before the response starts, so a bad name is a 400, not a broken stream)."""
    image = await asyncio.to_thread(make, engine.images, scratch_dir(engine))
    for name in image.repo_tags:
        publish(engine, "tag", image.id, name)
    return image
