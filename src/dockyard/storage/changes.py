"""What a container changed, as `docker diff` reports it and as a layer diff needs it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from .lowerview import LowerView
from .treescan import ScanEntry, overlay_changes, walk

MODIFIED, ADDED, DELETED = 0, 1, 2


def upper_changes(upper: Path, lower: LowerView) -> list[tuple[bytes, int]]:
    """Changes recorded in an overlay upper directory."""
    result = []
    for entry in overlay_changes(upper):
        if entry.kind == "whiteout":
            result.append((entry.rel, DELETED))
        elif entry.kind == "opaque":
            kept = {os.fsencode(name) for name in os.listdir(entry.path)}
            for name in sorted(lower.names(entry.rel) - kept):
                result.append((entry.rel + b"/" + name, DELETED))
        else:
            kind = MODIFIED if lower.lookup(entry.rel) is not None else ADDED
            result.append((entry.rel, kind))
    return sorted(result, key=_order)


def tree_changes(root: Path, lower: LowerView) -> list[tuple[bytes, int]]:
    """Changes of a full copy against the layers it was made from.

    As Docker does, a directory counts as modified when anything inside it changed, so a
    diff carries the metadata of every directory on the way to a change.
    """
    before = lower.tree()
    changes: dict[bytes, int] = {}
    for entry in walk(root):
        assert entry.st is not None
        old = before.pop(entry.rel, None)
        if old is None:
            changes[entry.rel] = ADDED
        elif _differs(old, entry.st):
            changes[entry.rel] = MODIFIED
    for rel in before:  # what is left was deleted; report the topmost deleted path only
        if _parent(rel) not in before:
            changes[rel] = DELETED
    for rel in list(changes):
        parent = _parent(rel)
        while parent and parent not in changes:
            changes[parent] = MODIFIED
            parent = _parent(parent)
    return sorted(changes.items(), key=_order)


def change_entries(root: Path, changes: list[tuple[bytes, int]]) -> Iterator[ScanEntry]:
    """The layer entries of `tree_changes`, in its order: the changed entries as a fresh
    walk finds them, and a whiteout for each deletion."""
    deleted = [rel for rel, kind in changes if kind == DELETED]
    changed = {rel for rel, kind in changes if kind != DELETED}
    for entry in walk(root):
        while deleted and _key(deleted[0]) < _key(entry.rel):
            yield ScanEntry(deleted.pop(0), None, kind="whiteout")
        if entry.rel in changed:
            yield entry
    for rel in deleted:
        yield ScanEntry(rel, None, kind="whiteout")


def as_docker(changes: list[tuple[bytes, int]]) -> list[tuple[str, int]]:
    return [("/" + os.fsdecode(rel), kind) for rel, kind in changes]


def _differs(old: os.stat_result, new: os.stat_result) -> bool:
    if (old.st_mode, old.st_uid, old.st_gid, old.st_rdev) != (
        new.st_mode,
        new.st_uid,
        new.st_gid,
        new.st_rdev,
    ):
        return True
    if stat.S_ISDIR(new.st_mode):
        return False  # directories count as changed through their content, see above
    return (old.st_size, old.st_mtime_ns) != (new.st_size, new.st_mtime_ns)


def _parent(rel: bytes) -> bytes:
    return rel.rpartition(b"/")[0]


def _key(rel: bytes) -> list[bytes]:
    # Component-wise order is walk order: a directory right before its content.
    return rel.split(b"/")


def _order(item: tuple[bytes, int]) -> list[bytes]:
    return _key(item[0])
