"""Fixtures of the storage integration tests: root, real kernel, one temp dir per test."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.storage.content import ContentStore
from dockyard.storage.layers import LayerStore
from dockyard.storage.mounts import unmount

if os.geteuid() != 0:
    pytest.skip("storage integration tests need root", allow_module_level=True)


@pytest.fixture
def content(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "content")


@pytest.fixture
def layers(tmp_path: Path, content: ContentStore) -> LayerStore:
    return LayerStore(tmp_path / "layers", content)


@pytest.fixture
def mounted() -> Iterator[list[Path]]:
    """Mount points to unmount after the test, whatever happened."""
    targets: list[Path] = []
    yield targets
    for target in reversed(targets):
        with contextlib.suppress(OSError):
            unmount(target)
