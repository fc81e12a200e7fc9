"""A real data root per test: database, content store, layer store and image store, in a
temporary directory, torn down with any mount left under it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockyard.image.rootfs import unmount_under
from dockyard.image.store import ImageStore
from dockyard.storage.content import ContentStore
from dockyard.storage.layers import LayerStore
from dockyard.store import Database


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes minutes (debootstrap); -m 'not slow' skips")


@dataclass
class DataRoot:
    path: Path
    db: Database
    images: ImageStore

    @property
    def scratch(self) -> Path:
        return self.path / "tmp"

    @property
    def content(self) -> ContentStore:
        return self.images.content

    @property
    def layers(self) -> LayerStore:
        return self.images.layers

    def blobs(self) -> set[str]:
        return set(self.content.digests())


@pytest.fixture
def make_root(tmp_path: Path) -> Iterator[Callable[[], DataRoot]]:
    """`make_root()`: a fresh, empty data root (call it twice for two daemons' worth)."""
    made: list[DataRoot] = []

    def make() -> DataRoot:
        path = tmp_path / f"root{len(made)}"
        (path / "tmp").mkdir(parents=True)
        db = Database(path)
        content = ContentStore(path / "content")
        # Not durable: syncfs per layer costs seconds on a busy disk and proves nothing here.
        layers = LayerStore(path / "layers", content, durable=False)
        root = DataRoot(path, db, ImageStore(db, content, layers))
        made.append(root)
        return root

    yield make
    for root in made:
        unmount_under(root.path)
        root.db.close()
        shutil.rmtree(root.path, ignore_errors=True)


@pytest.fixture
def root(make_root: Callable[[], DataRoot]) -> DataRoot:
    return make_root()
