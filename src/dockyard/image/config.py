"""Image configs (the JSON whose digest is the image ID): parse, validate, create.

A parsed config keeps the exact bytes it came from, because the image ID is their digest;
new configs are encoded once, when created.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import InvalidImage
from .manifest import MAX_LAYERS, check_digest, encode, load_json
from .platform import Platform

MAX_CONFIG_SIZE = 8 << 20  # configs carry history, env and labels: larger than manifests

# Container-config keys and the JSON type each must have when present (null is always allowed,
# as Go writes nil slices and maps as null).
_CONFIG_FIELDS: dict[str, type] = {
    "User": str,
    "ExposedPorts": dict,
    "Env": list,
    "Entrypoint": list,
    "Cmd": list,
    "Volumes": dict,
    "WorkingDir": str,
    "Labels": dict,
    "StopSignal": str,
    "OnBuild": list,
    "Shell": list,
    "Healthcheck": dict,
}
_STRING_LISTS = ("Env", "Entrypoint", "Cmd", "OnBuild", "Shell")


@dataclass(frozen=True)
class HistoryEntry:
    created: str = ""
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in (
            ("created", self.created),
            ("created_by", self.created_by),
            ("author", self.author),
            ("comment", self.comment),
        ):
            if value:
                out[key] = value
        if self.empty_layer:
            out["empty_layer"] = True
        return out


@dataclass(frozen=True)
class ImageConfig:
    """A validated image config. `doc` is the decoded JSON; treat it as read-only."""

    raw: bytes
    doc: dict[str, Any]

    @property
    def id(self) -> str:
        return "sha256:" + hashlib.sha256(self.raw).hexdigest()

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(self.doc["rootfs"]["diff_ids"])

    @property
    def platform(self) -> Platform:
        return Platform(
            self.doc.get("os") or "",
            self.doc.get("architecture") or "",
            self.doc.get("variant") or "",
        )

    @property
    def created(self) -> str:
        return self.doc.get("created") or ""

    @property
    def created_unix(self) -> int:
        return unix_time(self.created)

    @property
    def created_time(self) -> float:
        """Seconds since the epoch with the fraction: orders images made within one second."""
        return epoch_seconds(self.created)

    @property
    def container_config(self) -> dict[str, Any]:
        """The runtime defaults (Cmd, Env, ...), Docker's `Config` object."""
        return self.doc.get("config") or {}

    @property
    def history(self) -> tuple[HistoryEntry, ...]:
        return tuple(
            HistoryEntry(
                created=h.get("created") or "",
                created_by=h.get("created_by") or "",
                author=h.get("author") or "",
                comment=h.get("comment") or "",
                empty_layer=bool(h.get("empty_layer")),
            )
            for h in self.doc.get("history") or []
        )


def epoch_seconds(rfc3339: str) -> float:
    """Seconds since the epoch of an RFC 3339 time as Go writes it (to the microsecond); 0 if
    absent or malformed."""
    try:
        return datetime.fromisoformat(rfc3339).timestamp()
    except ValueError:
        return 0.0


def unix_time(rfc3339: str) -> int:
    return int(epoch_seconds(rfc3339))


def now_rfc3339() -> str:
    """The current UTC time as Go's RFC3339Nano writes it (trailing zeros trimmed)."""
    ns = time.time_ns()
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    digits = f"{fraction:09d}".rstrip("0")
    return f"{stamp}.{digits}Z" if digits else f"{stamp}Z"


def _check(value: Any, kind: type, what: str) -> None:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidImage(f"invalid image config: {what} must be {kind.__name__}")


def _check_container_config(config: Any) -> None:
    _check(config, dict, "config")
    for key, kind in _CONFIG_FIELDS.items():
        value = config.get(key)
        if value is None:
            continue
        _check(value, kind, f"config.{key}")
        if key in _STRING_LISTS:
            for item in value:
                _check(item, str, f"each item of config.{key}")
    for item in (config.get("Labels") or {}).values():
        _check(item, str, "each value of config.Labels")


def parse_config(raw: bytes) -> ImageConfig:
    """Validate a config from outside (archive, registry) and keep its exact bytes."""
    doc = load_json(raw, "image config", MAX_CONFIG_SIZE)
    rootfs = doc.get("rootfs")
    _check(rootfs, dict, "rootfs")
    if rootfs.get("type") != "layers":
        raise InvalidImage(f"invalid image config: unsupported rootfs type {rootfs.get('type')!r}")
    diff_ids = rootfs.get("diff_ids")
    diff_ids = [] if diff_ids is None else diff_ids
    _check(diff_ids, list, "rootfs.diff_ids")
    if len(diff_ids) > MAX_LAYERS:
        raise InvalidImage(f"too many layers ({len(diff_ids)}, at most {MAX_LAYERS})")
    for diff_id in diff_ids:
        check_digest(diff_id, "rootfs diff_id")
    for key in ("os", "architecture", "variant", "created", "author"):
        if doc.get(key) is not None:
            _check(doc[key], str, key)
    if doc.get("config") is not None:
        _check_container_config(doc["config"])
    history = doc.get("history")
    history = [] if history is None else history
    _check(history, list, "history")
    for entry in history:
        _check(entry, dict, "each history entry")
        for key in ("created", "created_by", "author", "comment"):
            if entry.get(key) is not None:
                _check(entry[key], str, f"history {key}")
    if sum(1 for h in history if not h.get("empty_layer")) > len(diff_ids):
        raise InvalidImage("too many non-empty layers in History section")
    return ImageConfig(raw, doc)


def new_config(
    *,
    diff_ids: list[str],
    platform: Platform,
    config: dict[str, Any],
    history: list[HistoryEntry],
    created: str,
    author: str = "",
    comment: str = "",
) -> ImageConfig:
    """A config for an image made here (import, bootstrap, commit), in Docker's key order."""
    doc: dict[str, Any] = {"architecture": platform.architecture}
    if author:
        doc["author"] = author
    if comment:
        doc["comment"] = comment
    doc["config"] = config
    doc["created"] = created
    doc["history"] = [h.to_json() for h in history]
    doc["os"] = platform.os
    doc["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    if platform.variant:
        doc["variant"] = platform.variant
    return parse_config(encode(doc))
