"""Garbage collection of blobs, layers and snapshots nothing refers to any more.

The caller (the engine) names the roots: every blob, layer and snapshot a container, an
image, a build or a transfer in flight still uses. A kept snapshot keeps its image's
layers; a kept layer keeps its ancestors. Anything younger than `min_age` survives too:
that covers a write that has finished but whose reference is not recorded yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .content import ContentStore
from .errors import InUse, NotFound
from .layers import LayerStore
from .snapshot import Snapshotter


@dataclass(frozen=True)
class GcRoots:
    digests: frozenset[str] = frozenset()
    chain_ids: frozenset[str] = frozenset()
    snapshot_keys: frozenset[str] = frozenset()
    min_age: float = 0.0


@dataclass
class GcReport:
    blobs: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unreferenced but mounted snapshots
    reclaimed: int = 0  # bytes of blobs and unpacked layer content


def collect(
    content: ContentStore, layers: LayerStore, snapshots: Snapshotter, roots: GcRoots
) -> GcReport:
    report = GcReport()
    now = time.time()

    def young(path: Path) -> bool:
        try:
            return now - path.stat().st_mtime < roots.min_age
        except FileNotFoundError:
            return False

    used_layers = set(roots.chain_ids)
    existing = snapshots.keys()
    for key in existing:
        if key in roots.snapshot_keys or young(snapshots.root / key):
            _keep_parent(snapshots, key, used_layers)
            continue
        try:
            snapshots.remove(key)
            report.snapshots.append(key)
        except InUse:
            report.skipped.append(key)
            _keep_parent(snapshots, key, used_layers)

    all_layers = layers.chain_ids()
    used_layers |= {c for c in all_layers if young(layers.get(c).path.parent)}
    alive = _with_ancestors(layers, used_layers)
    doomed = [c for c in all_layers if c not in alive]
    for cid in sorted(doomed, key=lambda c: -_depth(layers, c)):  # children before parents
        report.reclaimed += layers.get(cid).size
        layers.remove(cid)
        report.layers.append(cid)

    for digest in list(content.digests()):
        if digest in roots.digests or young(content.path(digest)):
            continue
        report.reclaimed += content.size(digest)
        content.delete(digest)
        layers.forget_blob(digest)
        report.blobs.append(digest)

    content.clean_ingest()
    layers.clean()
    snapshots.clean()
    return report


def _keep_parent(snapshots: Snapshotter, key: str, used: set[str]) -> None:
    parent = snapshots.parent(key)
    if parent is not None:
        used.add(parent)


def _with_ancestors(layers: LayerStore, chain_ids: set[str]) -> set[str]:
    alive: set[str] = set()
    for cid in chain_ids:
        current: str | None = cid
        while current is not None and current not in alive:
            try:
                parent = layers.get(current).parent
            except NotFound:
                break  # a root naming a layer that is not (yet) there
            alive.add(current)
            current = parent
    return alive


def _depth(layers: LayerStore, chain_id: str) -> int:
    return len(layers.lower_dirs(chain_id))
