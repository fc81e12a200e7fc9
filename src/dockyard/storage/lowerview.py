"""The merged view of a stack of layer directories, without mounting it.

Used to tell added from modified files and to list what a snapshot deleted: the answers
`docker diff` gives and the copy snapshotter's diff needs.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .treescan import is_opaque, is_whiteout, walk


class LowerView:
    def __init__(self, dirs: list[Path]) -> None:
        self._dirs = [os.fsencode(d) for d in dirs]  # top first

    def lookup(self, rel: bytes) -> os.stat_result | None:
        """The entry at `rel` in the merged view, or None if it does not exist there."""
        parts = rel.split(b"/")
        for top in self._dirs:
            path = top
            hidden_below = False
            for i, part in enumerate(parts):
                path += b"/" + part
                try:
                    st = os.stat(path, follow_symlinks=False)
                except FileNotFoundError:
                    break  # not in this layer; lower ones may have it
                if is_whiteout(st):
                    return None
                if i == len(parts) - 1:
                    return st
                if not stat.S_ISDIR(st.st_mode):
                    return None  # a file in this layer hides everything below its path
                hidden_below = hidden_below or is_opaque(path)
            if hidden_below:
                return None
        return None

    def names(self, rel: bytes) -> set[bytes]:
        """Names of the entries of directory `rel` in the merged view."""
        candidates: set[bytes] = set()
        for top in self._dirs:
            try:
                candidates.update(os.listdir(top + b"/" + rel if rel else top))
            except (FileNotFoundError, NotADirectoryError):
                continue
        return {n for n in candidates if self.lookup(rel + b"/" + n if rel else n) is not None}

    def tree(self) -> dict[bytes, os.stat_result]:
        """Every entry of the merged view with its stat."""
        merged: dict[bytes, os.stat_result] = {}
        for top in reversed(self._dirs):
            for entry in walk(Path(os.fsdecode(top))):
                assert entry.st is not None
                if is_whiteout(entry.st):
                    _drop(merged, entry.rel, with_self=True)
                    continue
                if not stat.S_ISDIR(entry.st.st_mode) or is_opaque(entry.path):
                    _drop(merged, entry.rel, with_self=False)
                merged[entry.rel] = entry.st
        return merged


def _drop(merged: dict[bytes, os.stat_result], rel: bytes, with_self: bool) -> None:
    prefix = rel + b"/"
    for key in [k for k in merged if k.startswith(prefix)]:
        del merged[key]
    if with_self:
        merged.pop(rel, None)
