"""`docker save`: images to a docker-archive tar that also is an OCI image layout.

The output is byte-for-byte reproducible: entries in sorted order, fixed times and owners,
and layers written as their uncompressed tars, whose digests are the diff IDs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..storage.compression import detect, open_decompressed
from .errors import InvalidImage, NotFound
from .layout import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    INDEX_FILE,
    MANIFEST_FILE,
    OCI_LAYOUT_CONTENT,
    OCI_LAYOUT_FILE,
    REPOSITORIES_FILE,
    blob_path,
)
from .manifest import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, Descriptor, encode
from .reference import Reference, parse_any
from .store import Image, ImageLayer, ImageStore

_CHUNK = 1 << 20


@dataclass
class _Selected:
    image: Image
    tags: list[Reference] = field(default_factory=list)


def select_images(store: ImageStore, names: Sequence[str]) -> list[_Selected]:
    """The images and tags that `docker save NAME...` writes, by Docker's rules: a repository
    name brings all its tags; repo:tag that tag; an ID or digest the image without tags."""
    chosen: dict[str, _Selected] = {}

    def add(image_id: str, tag: Reference | None = None) -> None:
        entry = chosen.setdefault(image_id, _Selected(store.get(image_id)))
        if tag is not None and tag.tag is not None and tag not in entry.tags:
            entry.tags.append(tag)

    for name in names:
        ref = parse_any(name)
        if isinstance(ref, str) or ref.familiar_name == "sha256":
            add(store.resolve(name))
        elif ref.name_only:
            named = store.names(ref.repository)
            for tag, image_id in named:
                add(image_id, tag)
            if not named:
                add(store.resolve(name))
        else:
            target = ref.docker_ref()
            image_id = store.lookup(target)
            if image_id is None:
                raise NotFound(f"No such image: {target.familiar}")
            add(image_id, target)
    return list(chosen.values())


def save(store: ImageStore, names: Sequence[str], out: BinaryIO, scratch: Path) -> None:
    """Write the images `names` select to `out` (any writable stream). `scratch` holds
    decompressed copies of layers stored compressed, removed when done."""
    selected = select_images(store, names)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        blobs: dict[str, Path | bytes] = {}  # digest -> file or content
        manifest_items, descriptors, repositories = [], [], {}
        saved_ids = {s.image.id for s in selected}
        for entry in selected:
            image = entry.image
            if not image.layers:
                raise InvalidImage("empty export - not implemented")
            blobs[image.id] = image.config.raw
            layer_descriptors = []
            for layer in image.layers:
                if layer.diff_id not in blobs:
                    blobs[layer.diff_id] = _plain_layer(store, layer, Path(tmp))
                size = _size(blobs[layer.diff_id])
                layer_descriptors.append(Descriptor(OCI_LAYER, layer.diff_id, size))
            oci_manifest = _oci_manifest(image, layer_descriptors)
            manifest_digest = "sha256:" + hashlib.sha256(oci_manifest).hexdigest()
            blobs[manifest_digest] = oci_manifest
            platform = _platform_json(image)
            descriptor = {
                "mediaType": OCI_MANIFEST,
                "digest": manifest_digest,
                "size": len(oci_manifest),
                "platform": platform,
            }
            top_layer = image.layers[-1].diff_id[7:]
            for tag in entry.tags:
                repositories.setdefault(tag.familiar_name, {})[tag.tag] = top_layer
                annotations = {ANNOTATION_IMAGE_NAME: str(tag), ANNOTATION_REF_NAME: tag.tag}
                descriptors.append({**descriptor, "annotations": annotations})
            if not entry.tags:
                descriptors.append(descriptor)  # OCI tools still find an untagged image
            item = {
                "Config": blob_path(image.id),
                "RepoTags": [tag.familiar for tag in entry.tags] or None,
                "Layers": [blob_path(layer.diff_id) for layer in image.layers],
            }
            if image.parent in saved_ids:
                item["Parent"] = image.parent
            manifest_items.append(item)
        files: dict[str, Path | bytes] = {blob_path(d): content for d, content in blobs.items()}
        files[INDEX_FILE] = encode(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
        )
        # json.Encoder in Go ends its output with a newline; Docker writes these two so.
        files[MANIFEST_FILE] = encode(manifest_items) + b"\n"
        files[OCI_LAYOUT_FILE] = OCI_LAYOUT_CONTENT
        if repositories:
            files[REPOSITORIES_FILE] = encode(repositories) + b"\n"
        _write_tar(files, out)


def _oci_manifest(image: Image, layers: list[Descriptor]) -> bytes:
    config = {
        "mediaType": OCI_CONFIG,
        "digest": image.id,
        "size": len(image.config.raw),
        "platform": _platform_json(image),
    }
    return encode(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": [layer.to_json() for layer in layers],
        }
    )


def _platform_json(image: Image) -> dict[str, str]:
    platform = image.config.platform
    out = {"architecture": platform.architecture, "os": platform.os}
    if platform.variant:
        out["variant"] = platform.variant
    return out


def _plain_layer(store: ImageStore, layer: ImageLayer, tmp: Path) -> Path:
    """The layer's uncompressed tar: the stored blob itself, or a verified decompressed copy."""
    path = store.content.path(layer.blob_digest)
    if layer.blob_digest == layer.diff_id:
        return path
    with open(path, "rb") as f:
        if detect(f.read(8)) is None:
            raise InvalidImage(f"layer blob {layer.blob_digest} does not match {layer.diff_id}")
        f.seek(0)
        copy = tmp / layer.diff_id[7:]
        digest = hashlib.sha256()
        with open_decompressed(f) as plain, open(copy, "wb") as dest:
            while chunk := plain.read(_CHUNK):
                digest.update(chunk)
                dest.write(chunk)
    if "sha256:" + digest.hexdigest() != layer.diff_id:
        raise InvalidImage(f"layer blob {layer.blob_digest} does not match {layer.diff_id}")
    return copy


def _size(content: Path | bytes) -> int:
    return content.stat().st_size if isinstance(content, Path) else len(content)


def _write_tar(files: dict[str, Path | bytes], out: BinaryIO) -> None:
    """Sorted entries, directories included, with fixed metadata (mtime 0, root, 0644/0755)."""
    names = sorted(set(files) | set(_parents(files)))
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=_CHUNK) as tar:
        tar.copybufsize = _CHUNK  # tarfile's 16 KiB default makes large layers slow
        for name in names:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            content = files.get(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            info.mode, info.size = 0o644, _size(content)
            with _open(content) as stream:
                tar.addfile(info, stream)


def _parents(names: Iterable[str]) -> Iterator[str]:
    for name in names:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            yield "/".join(parts[:i])


@contextlib.contextmanager
def _open(content: Path | bytes) -> Iterator[BinaryIO]:
    if isinstance(content, bytes):
        yield io.BytesIO(content)
    else:
        with open(content, "rb") as f:
            yield f
