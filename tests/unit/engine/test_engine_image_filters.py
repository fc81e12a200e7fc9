"""The `reference` filter of `docker images`: Go's path.Match over familiar names."""

from __future__ import annotations

import pytest

from dockyard.engine.images import _path_match, _reference_match


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("busy*", "busybox", True),
        ("*", "user/app", False),  # `*` stops at `/`
        ("*/*", "user/app", True),
        ("b?sybox", "busybox", True),
        ("[a-c]usybox", "busybox", True),
        ("[^a-c]usybox", "busybox", False),
        ("busybox", "busybox:latest", False),
        ("busybox:l*", "busybox:latest", True),
        ("\\*", "*", True),
        ("[", "[", False),  # a bad pattern matches nothing
    ],
)
def test_path_match(pattern: str, text: str, expected: bool) -> None:
    assert _path_match(pattern, text) is expected


def test_reference_match_tries_the_name_and_the_full_familiar_form() -> None:
    assert _reference_match(["busybox"], "busybox:latest")
    assert _reference_match(["busybox:latest"], "busybox:latest")
    assert _reference_match(["localhost:5000/*"], "localhost:5000/app:1")
    assert not _reference_match(["other"], "busybox:latest")
