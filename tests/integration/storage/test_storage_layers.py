"""Layer store: unpack once per chain ID, verify, stay consistent under races and failures."""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import threading
from pathlib import Path

import pytest
from isal import igzip
from storage_kit import reg, tar_bytes

from dockyard.storage.content import ContentStore
from dockyard.storage.errors import DigestMismatch, InUse, NotFound, UnsafeArchive
from dockyard.storage.layers import LayerStore, chain_id


def _layer_blob(content: ContentStore, *files: tuple[str, bytes]) -> tuple[str, str]:
    plain = tar_bytes(*(reg(name, data) for name, data in files))
    blob = content.write(igzip.compress(plain))
    return blob.digest, "sha256:" + hashlib.sha256(plain).hexdigest()


def _leftovers(layers: LayerStore) -> list[str]:
    return os.listdir(layers.root / "tmp")


def test_unpack_stack_and_metadata(content: ContentStore, layers: LayerStore) -> None:
    blob1, diff1 = _layer_blob(content, ("a", b"1"))
    blob2, diff2 = _layer_blob(content, ("b", b"2"))
    base = layers.unpack(blob1, None)
    top = layers.unpack(blob2, base.chain_id, expected_diff_id=diff2)
    assert base.chain_id == diff1 and base.parent is None and base.size == 1
    assert top.chain_id == chain_id(diff1, diff2) and top.parent == diff1
    assert (top.path / "b").read_bytes() == b"2" and not (top.path / "a").exists()
    assert layers.chain_ids() == sorted([base.chain_id, top.chain_id])
    assert layers.lower_dirs(top.chain_id) == [top.path, base.path]
    links = layers.lower_links(top.chain_id)
    assert [(layers.root / link).resolve() for link in links] == [top.path, base.path]
    assert layers.get(top.chain_id) == top


def test_unpack_is_idempotent_without_rework(content: ContentStore, layers: LayerStore) -> None:
    blob, _ = _layer_blob(content, ("a", b"1"))
    first = layers.unpack(blob, None)
    inode = first.path.stat().st_ino
    assert layers.unpack(blob, None) == first  # known through by-blob, not re-unpacked
    assert first.path.stat().st_ino == inode and _leftovers(layers) == []


def test_wrong_diff_id_leaves_nothing(content: ContentStore, layers: LayerStore) -> None:
    blob, _ = _layer_blob(content, ("a", b"1"))
    with pytest.raises(DigestMismatch):
        layers.unpack(blob, None, expected_diff_id="sha256:" + "1" * 64)
    assert layers.chain_ids() == [] and _leftovers(layers) == []
    assert os.listdir(layers.root / "l") == []


def test_hostile_layer_leaves_nothing(content: ContentStore, layers: LayerStore) -> None:
    blob = content.write(tar_bytes(reg("ok", b"1"), reg("../escape", b"x"))).digest
    with pytest.raises(UnsafeArchive):
        layers.unpack(blob, None)
    assert layers.chain_ids() == [] and _leftovers(layers) == []


def test_missing_parent_and_blob(content: ContentStore, layers: LayerStore) -> None:
    blob, _ = _layer_blob(content, ("a", b"1"))
    with pytest.raises(NotFound):
        layers.unpack(blob, "sha256:" + "2" * 64)
    with pytest.raises(NotFound):
        layers.unpack("sha256:" + "3" * 64, None)


def test_add_tar_from_a_stream(layers: LayerStore) -> None:
    layer = layers.add_tar(io.BytesIO(tar_bytes(reg("imported", b"i"))), None)
    assert (layer.path / "imported").read_bytes() == b"i"


def test_remove_refuses_a_parent_and_cleans_links(
    content: ContentStore, layers: LayerStore
) -> None:
    base = layers.unpack(_layer_blob(content, ("a", b"1"))[0], None)
    top = layers.unpack(_layer_blob(content, ("b", b"2"))[0], base.chain_id)
    with pytest.raises(InUse):
        layers.remove(base.chain_id)
    layers.remove(top.chain_id)
    layers.remove(base.chain_id)
    assert layers.chain_ids() == [] and os.listdir(layers.root / "l") == []
    assert _leftovers(layers) == []


def test_concurrent_unpacks_in_threads_share_one_layer(
    content: ContentStore, layers: LayerStore
) -> None:
    blob, diff = _layer_blob(content, *((f"f{i}", os.urandom(10000)) for i in range(50)))
    results, errors = [], []

    def worker(expected: str | None) -> None:
        try:
            results.append(layers.unpack(blob, None, expected_diff_id=expected))
        except Exception as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(diff if i % 2 else None,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    assert layers.chain_ids() == [diff] and len(os.listdir(layers.root / "l")) == 1
    assert _leftovers(layers) == []


def _unpack_in_process(root: str, content_root: str, blob: str) -> str:
    store = LayerStore(Path(root), ContentStore(Path(content_root)))
    return store.unpack(blob, None).chain_id


def test_concurrent_unpacks_in_processes(content: ContentStore, layers: LayerStore) -> None:
    blob, diff = _layer_blob(content, *((f"f{i}", os.urandom(10000)) for i in range(50)))
    args = [(str(layers.root), str(content.root), blob)] * 6
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        assert set(pool.starmap(_unpack_in_process, args)) == {diff}
    assert layers.chain_ids() == [diff] and len(os.listdir(layers.root / "l")) == 1


def test_clean_removes_stale_unpacks_and_dangling_links(layers: LayerStore) -> None:
    stale = layers.root / "tmp" / "crashed"
    (stale / "diff").mkdir(parents=True)
    os.symlink("../nothing/diff", layers.root / "l" / "DANGLING")
    os.utime(stale, (0, 0))
    os.utime(layers.root / "l" / "DANGLING", (0, 0), follow_symlinks=False)
    assert layers.clean() == 2
    assert _leftovers(layers) == [] and os.listdir(layers.root / "l") == []
