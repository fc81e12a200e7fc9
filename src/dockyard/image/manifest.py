"""Manifests and indexes: Docker schema2 and OCI, parsed and validated at the edge.

Everything here comes from outside (a registry, an archive), so every field that is used is
checked for type and form; unknown fields are ignored as the specs require.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidImage, InvalidReference
from .platform import Platform, rank
from .reference import validate_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDIST_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

MANIFEST_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
CONFIG_TYPES = frozenset({DOCKER_CONFIG, OCI_CONFIG})
LAYER_TYPES = frozenset(
    {
        DOCKER_LAYER_GZIP,
        DOCKER_FOREIGN_LAYER_GZIP,
        OCI_LAYER,
        OCI_LAYER_GZIP,
        OCI_LAYER_ZSTD,
        OCI_LAYER_NONDIST,
        OCI_LAYER_NONDIST_GZIP,
        OCI_LAYER_NONDIST_ZSTD,
    }
)
FOREIGN_LAYER_TYPES = frozenset(
    {DOCKER_FOREIGN_LAYER_GZIP, OCI_LAYER_NONDIST, OCI_LAYER_NONDIST_GZIP, OCI_LAYER_NONDIST_ZSTD}
)
# Registries cap manifests at 4 MiB; nothing legitimate comes close.
MAX_MANIFEST_SIZE = 4 << 20
MAX_LAYERS = 127  # overlayfs stacks at most ~128 lower directories


def _expect(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    # bool is an int in Python, never a valid size or count in JSON here.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidImage(f"invalid {what}: expected {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "an array", str: "a string", int: "an integer"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def check_digest(value: Any, what: str) -> str:
    try:
        return validate_digest(_expect(value, str, what))
    except InvalidReference as e:
        raise InvalidImage(f"invalid {what} {value!r}: {e}") from None


def load_json(data: bytes, what: str, limit: int = MAX_MANIFEST_SIZE) -> dict[str, Any]:
    """Decode a JSON object from outside, bounded in size."""
    if len(data) > limit:
        raise InvalidImage(f"{what} is too large ({len(data)} bytes, at most {limit})")
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidImage(f"invalid {what}: {e}") from None
    return _expect(value, dict, what)


def _string_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    _expect(value, dict, what)
    for key, item in value.items():
        _expect(item, str, f"{what} value for {key!r}")
    return dict(value)


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a manifest or index points at."""

    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, value: Any, what: str = "descriptor") -> Descriptor:
        _expect(value, dict, what)
        media_type = _expect(value.get("mediaType", ""), str, f"{what} mediaType")
        digest = check_digest(value.get("digest"), f"{what} digest")
        size = _expect(value.get("size"), int, f"{what} size")
        if size < 0:
            raise InvalidImage(f"invalid {what} size: {size}")
        urls = tuple(
            _expect(u, str, f"{what} url")
            for u in _expect(value.get("urls", []), list, f"{what} urls")
        )
        platform = None
        if value.get("platform") is not None:
            p = _expect(value["platform"], dict, f"{what} platform")
            platform = Platform(
                _expect(p.get("os", ""), str, f"{what} platform os"),
                _expect(p.get("architecture", ""), str, f"{what} platform architecture"),
                _expect(p.get("variant", ""), str, f"{what} platform variant"),
            )
        annotations = _string_map(value.get("annotations"), f"{what} annotations")
        return cls(media_type, digest, size, annotations, platform, urls)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            p = self.platform
            out["platform"] = {"architecture": p.architecture, "os": p.os}
            if p.variant:
                out["platform"]["variant"] = p.variant
        return out


@dataclass(frozen=True)
class Manifest:
    """An image manifest (Docker schema2 or OCI): one config and its layers, bottom first."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Index:
    """An OCI index or Docker manifest list: manifests for several platforms."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict)


def _schema_version(doc: dict[str, Any], what: str) -> None:
    if doc.get("schemaVersion") != 2:
        raise InvalidImage(f"unsupported {what} schemaVersion {doc.get('schemaVersion')!r}")


def _media_type(doc: dict[str, Any], declared: str | None) -> str:
    """The document's own mediaType must agree with what it was served or stored as."""
    own = _expect(doc.get("mediaType", ""), str, "mediaType")
    if own and declared and own != declared:
        raise InvalidImage(f"mediaType {own!r} does not match the declared {declared!r}")
    return own or declared or ""


def parse(data: bytes, media_type: str | None = None) -> Manifest | Index:
    """Parse a manifest or index; `media_type` is the one it was served or referenced with."""
    doc = load_json(data, "manifest")
    kind = _media_type(doc, media_type)
    if kind in (DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED) or doc.get("schemaVersion") == 1:
        raise InvalidImage("Docker Image manifest schema 1 is not supported")
    if not kind:
        # OCI allows an absent mediaType; the shape tells the two apart.
        kind = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if kind in INDEX_TYPES:
        return parse_index(doc, kind)
    if kind in MANIFEST_TYPES:
        return parse_manifest(doc, kind)
    raise InvalidImage(f"unsupported manifest media type {kind!r}")


def parse_manifest(doc: dict[str, Any], kind: str) -> Manifest:
    _schema_version(doc, "manifest")
    config = Descriptor.from_json(doc.get("config"), "manifest config")
    if config.media_type not in CONFIG_TYPES:
        raise InvalidImage(f"unsupported image config media type {config.media_type!r}")
    layers = tuple(
        Descriptor.from_json(item, f"layer {i}")
        for i, item in enumerate(_expect(doc.get("layers", []), list, "manifest layers"))
    )
    if len(layers) > MAX_LAYERS:
        raise InvalidImage(f"too many layers ({len(layers)}, at most {MAX_LAYERS})")
    for layer in layers:
        if layer.media_type not in LAYER_TYPES:
            raise InvalidImage(f"unsupported layer media type {layer.media_type!r}")
    return Manifest(kind, config, layers, _string_map(doc.get("annotations"), "annotations"))


def parse_index(doc: dict[str, Any], kind: str) -> Index:
    _schema_version(doc, "index")
    manifests = tuple(
        Descriptor.from_json(item, f"manifest {i}")
        for i, item in enumerate(_expect(doc.get("manifests", []), list, "index manifests"))
    )
    return Index(kind, manifests, _string_map(doc.get("annotations"), "annotations"))


def select(index: Index, host: Platform) -> Descriptor:
    """The manifest of `index` that best suits `host`; entries without a platform (such as
    attestations) and nested indexes are candidates only by platform, like containerd's."""
    best: tuple[int, int] | None = None
    chosen = None
    for position, desc in enumerate(index.manifests):
        if desc.platform is None or desc.media_type not in MANIFEST_TYPES | INDEX_TYPES:
            continue
        score = rank(desc.platform, host)
        if score is not None and (best is None or (score, position) < best):
            best, chosen = (score, position), desc
    if chosen is None:
        raise InvalidImage(f"no matching manifest for {host} in the manifest list entries")
    return chosen


def encode(value: Any) -> bytes:
    """Canonical bytes for a document dockyard writes (compact, like Go's json.Marshal)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
