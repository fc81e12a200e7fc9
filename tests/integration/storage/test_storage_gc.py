"""Garbage collection keeps everything reachable from the roots and removes the rest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from storage_kit import reg, tar_bytes

from dockyard.storage.content import ContentStore
from dockyard.storage.gc import GcRoots, collect
from dockyard.storage.layers import LayerStore
from dockyard.storage.snapshot import Snapshotter, choose_snapshotter


@pytest.fixture
def snaps(tmp_path: Path, layers: LayerStore) -> Snapshotter:
    return choose_snapshotter(tmp_path / "snapshots", layers)


def _stack(content: ContentStore, layers: LayerStore, names: list[str]) -> list[str]:
    """Blobs and layers for a chain of one-file layers; returns the chain IDs."""
    chain, parent = [], None
    for name in names:
        blob = content.write(tar_bytes(reg(name, name.encode()))).digest
        parent = layers.unpack(blob, parent).chain_id
        chain.append(parent)
    return chain


def test_collect_keeps_roots_and_what_they_need(
    content: ContentStore, layers: LayerStore, snaps: Snapshotter, tmp_path: Path
) -> None:
    image_a = _stack(content, layers, ["a1", "a2", "a3"])
    image_b = _stack(content, layers, ["b1", "b2"])
    image_c = _stack(content, layers, ["c1"])
    manifest = content.write(b'{"manifest": true}').digest
    stray = content.write(b"stray").digest
    snaps.prepare("running", image_b[-1])
    snaps.prepare("mounted-orphan", image_c[-1])
    snaps.prepare("orphan", image_a[0])
    target = tmp_path / "mnt"
    target.mkdir()
    snaps.mount("mounted-orphan", target)
    try:
        report = collect(
            content,
            layers,
            snaps,
            GcRoots(
                digests=frozenset({manifest}),
                chain_ids=frozenset({image_a[1]}),
                snapshot_keys=frozenset({"running"}),
            ),
        )
    finally:
        snaps.unmount(target)
    assert report.snapshots == ["orphan"] and report.skipped == ["mounted-orphan"]
    assert set(snaps.keys()) == {"running", "mounted-orphan"}
    # a2 keeps a1; the running container keeps b2 and b1; the mounted one keeps c1.
    assert set(layers.chain_ids()) == {image_a[0], image_a[1], *image_b, image_c[0]}
    assert report.layers == [image_a[2]]
    assert list(content.digests()) == [manifest] and stray in report.blobs
    assert report.reclaimed > 0


def test_min_age_spares_fresh_writes(
    content: ContentStore, layers: LayerStore, snaps: Snapshotter
) -> None:
    chain = _stack(content, layers, ["fresh"])
    report = collect(content, layers, snaps, GcRoots(min_age=3600))
    assert report.blobs == report.layers == [] and layers.chain_ids() == chain
    report = collect(content, layers, snaps, GcRoots())
    assert layers.chain_ids() == [] and list(content.digests()) == []


def test_collect_removes_leftovers_of_crashes(
    content: ContentStore, layers: LayerStore, snaps: Snapshotter
) -> None:
    crashed = content.root / "ingest" / "dead"
    crashed.write_bytes(b"partial")
    os.utime(crashed, (0, 0))
    half = layers.root / "tmp" / "half-unpacked"
    half.mkdir()
    os.utime(half, (0, 0))
    collect(content, layers, snaps, GcRoots())
    assert os.listdir(content.root / "ingest") == [] and os.listdir(layers.root / "tmp") == []


def test_by_blob_memory_is_dropped_with_the_blob(
    content: ContentStore, layers: LayerStore, snaps: Snapshotter
) -> None:
    blob = content.write(tar_bytes(reg("x", b"x"))).digest
    layers.unpack(blob, None)
    assert (layers.root / "by-blob" / blob[7:]).exists()
    collect(content, layers, snaps, GcRoots())
    assert not (layers.root / "by-blob" / blob[7:]).exists()
    content.write(tar_bytes(reg("x", b"x")))
    assert layers.unpack(blob, None).chain_id in layers.chain_ids()
