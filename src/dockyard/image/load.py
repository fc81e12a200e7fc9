"""`docker load`: images from a docker-archive (Docker's manifest.json) or an OCI layout tar.

The archive is read in one pass and never unpacked to disk by name: small members are kept
in memory, large ones go straight into the content store, and links are resolved inside the
archive. So a hostile archive cannot write outside the data root, whatever its names; sizes
are bounded, and every blob named by digest is verified.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..storage.compression import GZIP, ZSTD, detect, open_decompressed
from ..storage.errors import DigestMismatch, StorageError
from ..storage.layers import chain_id
from ..storage.limits import DEFAULT_LIMITS, Limits
from ..storage.tarreader import TarReader
from .config import MAX_CONFIG_SIZE, ImageConfig, parse_config
from .errors import InvalidImage, InvalidReference
from .layout import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, INDEX_FILE, MANIFEST_FILE, blob_path
from .manifest import (
    MAX_MANIFEST_SIZE,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    Descriptor,
    Index,
    Manifest,
    select,
)
from .manifest import parse as parse_manifest
from .platform import Platform, host_platform, normalize, rank
from .reference import Reference, parse_normalized
from .store import Blob, Image, ImageStore

# Members up to this size are held in memory (configs, manifests, small layers), up to a total;
# anything else is streamed into the content store.
MEMORY_MEMBER_LIMIT = 8 << 20
MEMORY_TOTAL_LIMIT = 128 << 20
MAX_LINK_DEPTH = 40
_MEDIA_TYPES = {None: OCI_LAYER, GZIP: OCI_LAYER_GZIP, ZSTD: OCI_LAYER_ZSTD}


@dataclass
class LoadResult:
    images: list[Image] = field(default_factory=list)
    # What `docker load` prints: "Loaded image: busybox:latest", "Loaded image ID: sha256:..."
    messages: list[str] = field(default_factory=list)


def load(
    store: ImageStore,
    stream: BinaryIO,
    *,
    platform: Platform | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> LoadResult:
    """Load every image of an archive (plain or compressed tar) and set its tags. Docker's
    manifest.json wins when present; else the OCI index.json is used, picking from each
    entry the manifest for `platform` (default: this host's)."""
    members = _Members(store)
    try:
        members.read_archive(stream, limits)
        if MANIFEST_FILE in members.files:
            return _DockerArchive(store, members).load()
        if INDEX_FILE in members.files:
            return _OciArchive(store, members, platform or host_platform()).load()
        raise InvalidImage(f"invalid archive: neither {MANIFEST_FILE} nor {INDEX_FILE} found")
    finally:
        store.discard(members.ingested)  # what no loaded image took


class _EntryStream:
    """The current tar entry's data as a readable stream."""

    def __init__(self, reader: TarReader) -> None:
        self._reader = reader

    def read(self, n: int = -1) -> bytes:
        return self._reader.read_data(n if n > 0 else 1 << 20)


@dataclass
class _Members:
    """An archive's regular files by normalised name: bytes in memory or a content digest."""

    store: ImageStore
    files: dict[str, bytes | str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    ingested: list[str] = field(default_factory=list)
    in_memory: int = 0

    def read_archive(self, stream: BinaryIO, limits: Limits) -> None:
        with open_decompressed(stream) as plain:
            reader = TarReader(plain, limits)
            try:
                for entry in reader:
                    self._add(reader, entry)
            except (StorageError, OSError) as e:
                raise InvalidImage(f"invalid archive: {e}") from None

    def _add(self, reader: TarReader, entry: Any) -> None:
        name = _clean(entry.name.decode("utf-8", "surrogateescape"))
        if entry.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
            target = entry.linkname.decode("utf-8", "surrogateescape")
            if entry.type == tarfile.SYMTYPE and not target.startswith("/"):
                target = posixpath.join(posixpath.dirname(name), target)
            self.links[name] = _clean(target)
            self.files.pop(name, None)
        elif entry.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
            self.links.pop(name, None)
            self.files[name] = self._content(name, reader, entry.size)
        # Directories and special files carry nothing an image needs.

    def _content(self, name: str, reader: TarReader, size: int) -> bytes | str:
        expected = _digest_of(name)
        if size <= MEMORY_MEMBER_LIMIT and self.in_memory + size <= MEMORY_TOTAL_LIMIT:
            data = _EntryStream(reader).read(size)
            self.in_memory += size
            if expected and "sha256:" + hashlib.sha256(data).hexdigest() != expected:
                raise InvalidImage(f"invalid archive: {name} does not match its digest")
            return data
        existed = expected is not None and self.store.content.has(expected)
        try:
            blob = self.store.content.ingest(_EntryStream(reader), expected, size)
        except DigestMismatch:
            raise InvalidImage(f"invalid archive: {name} does not match its digest") from None
        if not existed:
            self.ingested.append(blob.digest)
        return blob.digest

    def resolve(self, name: str) -> str:
        name = _clean(name)
        for _ in range(MAX_LINK_DEPTH):
            if name not in self.links:
                if name not in self.files:
                    raise InvalidImage(f"invalid archive: {name} not found")
                return name
            name = self.links[name]
        raise InvalidImage(f"invalid archive: too many levels of links at {name}")

    def read(self, name: str, limit: int) -> bytes:
        content = self.files[self.resolve(name)]
        if isinstance(content, bytes):
            if len(content) > limit:
                raise InvalidImage(f"invalid archive: {name} is too large")
            return content
        if self.store.content.size(content) > limit:
            raise InvalidImage(f"invalid archive: {name} is too large")
        return self.store.content.read(content)

    def blob(self, name: str) -> Blob:
        """Member `name` as a layer blob in the content store; xz and bzip2 are stored
        decompressed, since OCI has no media type for them."""
        content = self.files[self.resolve(name)]
        stream = (
            io.BytesIO(content) if isinstance(content, bytes) else self.store.content.open(content)
        )
        with stream:
            kind = detect(stream.read(8))
            stream.seek(0)
            if kind not in _MEDIA_TYPES:
                return Blob(self._ingest(open_decompressed(stream)), OCI_LAYER)
            if isinstance(content, bytes):
                digest = "sha256:" + hashlib.sha256(content).hexdigest()
                content = digest if self.store.content.has(digest) else self._ingest(stream)
            return Blob(content, _MEDIA_TYPES[kind])

    def _ingest(self, stream: BinaryIO) -> str:
        """Store a new blob, discarded at the end unless an image took it. (A blob that was
        there before is never ours to discard.)"""
        try:
            digest = self.store.content.ingest(stream).digest
        except StorageError as e:
            raise InvalidImage(f"invalid archive: {e}") from None
        self.ingested.append(digest)
        return digest


def _clean(name: str) -> str:
    """A member name relative to the archive root: `..` stops at the root, as in Docker's
    safePath. Names are only keys here; nothing is written by them."""
    return posixpath.normpath("/" + name).lstrip("/")


def _digest_of(name: str) -> str | None:
    """The digest a blobs/sha256/<hex> name promises, if it is such a name."""
    head, _, hexpart = name.rpartition("/")
    if (
        head == "blobs/sha256"
        and len(hexpart) == 64
        and all(c in "0123456789abcdef" for c in hexpart)
    ):
        return "sha256:" + hexpart
    return None


def _tags(values: list[str]) -> Iterator[Reference]:
    for value in values:
        ref = parse_normalized(value)
        if ref.tag is None or ref.digest is not None:
            raise InvalidImage(f'invalid tag "{value}"')
        yield ref


class _Loader:
    def __init__(self, store: ImageStore, members: _Members) -> None:
        self.store, self.members = store, members
        self.result = LoadResult()

    def layer_blobs(self, config: ImageConfig, names: list[str]) -> list[Blob]:
        """A blob per layer: the stored one when the layer is known, as Docker skips loading
        layers it has, else the archive's."""
        blobs, parent = [], None
        for diff_id, name in zip(config.diff_ids, names, strict=True):
            chain = chain_id(parent, diff_id)
            known = self.store.known_layer(chain)
            if known is not None:
                blobs.append(Blob(known.blob_digest, known.blob_media_type))
            else:
                blobs.append(self.members.blob(name))
            parent = chain
        return blobs

    def add(
        self, config: ImageConfig, blobs: list[Blob], tags: list[Reference], **kw: Any
    ) -> Image:
        try:
            image = self.store.create(config, blobs, **kw)
        except StorageError as e:
            raise InvalidImage(f"invalid archive: {e}") from None
        for ref in tags:
            old = self.store.add_ref(ref, image.id)
            if old is not None:
                self.result.messages.append(
                    f"The image {ref.familiar} already exists, renaming the old one with ID "
                    f"{old} to empty string"
                )
            self.result.messages.append(f"Loaded image: {ref.familiar}")
        if not tags:
            self.result.messages.append(f"Loaded image ID: {image.id}")
        self.result.images.append(self.store.get(image.id))
        return image


def _check_os(config: ImageConfig) -> None:
    os_name = normalize(config.platform).os or "linux"
    if os_name != "linux":
        raise InvalidImage(f"cannot load {os_name} image on linux")


class _DockerArchive(_Loader):
    def load(self) -> LoadResult:
        items = _manifest_items(self.members.read(MANIFEST_FILE, MAX_MANIFEST_SIZE))
        loaded: list[tuple[Image, str]] = []
        for item in items:
            config = parse_config(self.members.read(item["Config"], MAX_CONFIG_SIZE))
            _check_os(config)
            layers = item["Layers"]
            if len(layers) != len(config.diff_ids):
                raise InvalidImage(
                    f"invalid manifest, layers length mismatch: expected {len(layers)}, "
                    f"got {len(config.diff_ids)}"
                )
            image = self.add(
                config, self.layer_blobs(config, layers), list(_tags(item["RepoTags"]))
            )
            loaded.append((image, item["Parent"]))
        self._link_parents(loaded)
        return self.result

    def _link_parents(self, loaded: list[tuple[Image, str]]) -> None:
        """Docker keeps a saved image's local parent when the parent came along and its history
        is the child's minus one entry."""
        by_id = {image.id: image for image, _ in loaded}
        for image, parent_id in loaded:
            parent = by_id.get(parent_id)
            if parent is not None and parent.id != image.id and _valid_parent(image, parent):
                self.store.set_parent(image.id, parent.id)


def _valid_parent(image: Image, parent: Image) -> bool:
    child, older = image.config.history, parent.config.history
    if not child and not older:
        return True
    return len(child) - len(older) == 1 and child[: len(older)] == older


def _manifest_items(data: bytes) -> list[dict[str, Any]]:
    """manifest.json, validated: [{"Config": str, "RepoTags": [str]|null, "Layers": [str],
    "Parent": str?}, ...]."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidImage(f"invalid {MANIFEST_FILE}: {e}") from None
    if doc is None:
        raise InvalidImage("invalid manifest, manifest cannot be null (but can be [])")
    if not isinstance(doc, list):
        raise InvalidImage(f"invalid {MANIFEST_FILE}: expected an array")
    items = []
    for i, item in enumerate(doc):
        what = f"{MANIFEST_FILE} entry {i}"
        if not isinstance(item, dict) or not isinstance(item.get("Config"), str):
            raise InvalidImage(f"invalid {what}: Config must be a string")
        tags, layers = item.get("RepoTags") or [], item.get("Layers") or []
        parent = item.get("Parent") or ""
        if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            raise InvalidImage(f"invalid {what}: RepoTags must be strings")
        if not (isinstance(layers, list) and all(isinstance(x, str) for x in layers)):
            raise InvalidImage(f"invalid {what}: Layers must be strings")
        if not isinstance(parent, str):
            raise InvalidImage(f"invalid {what}: Parent must be a string")
        items.append(
            {"Config": item["Config"], "RepoTags": tags, "Layers": layers, "Parent": parent}
        )
    return items


class _OciArchive(_Loader):
    def __init__(self, store: ImageStore, members: _Members, platform: Platform) -> None:
        super().__init__(store, members)
        self.platform = platform

    def load(self) -> LoadResult:
        index = parse_manifest(self.members.read(INDEX_FILE, MAX_MANIFEST_SIZE), OCI_INDEX)
        if not isinstance(index, Index):
            raise InvalidImage(f"invalid {INDEX_FILE}: not an index")
        for desc in index.manifests:
            if desc.platform is not None and rank(desc.platform, self.platform) is None:
                continue
            manifest = self.manifest(desc)
            config_data = self.read_blob(manifest.config, MAX_CONFIG_SIZE)
            config = parse_config(config_data)
            _check_os(config)
            if len(manifest.layers) != len(config.diff_ids):
                raise InvalidImage(
                    f"invalid manifest, layers length mismatch: expected "
                    f"{len(manifest.layers)}, got {len(config.diff_ids)}"
                )
            for layer in manifest.layers:
                self.check_blob(layer)
            blobs = self.layer_blobs(config, [blob_path(layer.digest) for layer in manifest.layers])
            tags = [ref for ref in [_oci_tag(desc.annotations)] if ref is not None]
            self.add(config, blobs, tags, config_media_type=manifest.config.media_type)
        if not self.result.images:
            raise InvalidImage(f"no image for {self.platform} in the archive")
        return self.result

    def manifest(self, desc: Descriptor) -> Manifest:
        """The image manifest `desc` names, through one level of index if it is one."""
        for _ in range(2):
            parsed = parse_manifest(self.read_blob(desc, MAX_MANIFEST_SIZE), desc.media_type)
            if isinstance(parsed, Manifest):
                return parsed
            desc = select(parsed, self.platform)
        raise InvalidImage("invalid archive: an index nested in an index nested in an index")

    def read_blob(self, desc: Descriptor, limit: int) -> bytes:
        self.check_blob(desc)
        return self.members.read(blob_path(desc.digest), limit)

    def check_blob(self, desc: Descriptor) -> None:
        """The archive holds the blob, with the promised size (its digest was checked as it
        was read)."""
        name = blob_path(desc.digest)
        try:
            content = self.members.files[self.members.resolve(name)]
        except InvalidImage:
            raise InvalidImage(f"invalid archive: blob {desc.digest} is missing") from None
        size = len(content) if isinstance(content, bytes) else self.store.content.size(content)
        if size != desc.size:
            raise InvalidImage(
                f"invalid archive: blob {desc.digest} is {size} bytes, not {desc.size}"
            )


def _oci_tag(annotations: dict[str, str]) -> Reference | None:
    """The name an index entry gives its image: containerd's full-name annotation, else the
    OCI ref name when it is a whole reference rather than a bare tag."""
    name = annotations.get(ANNOTATION_IMAGE_NAME)
    if name is None:
        ref_name = annotations.get(ANNOTATION_REF_NAME, "")
        if not any(c in ref_name for c in ":/"):
            return None
        name = ref_name
    try:
        ref = parse_normalized(name)
    except InvalidReference:
        return None
    return None if ref.digest else ref.tagged_default()
