"""Layer store: each layer unpacked once, keyed by chain ID, shared by every user.

Layout (as Docker's overlay2):
  <root>/<chain-hex>/diff      the layer's own changes, overlay whiteouts included
  <root>/<chain-hex>/link      short name of diff: <root>/l/<link> -> ../<chain-hex>/diff
  <root>/<chain-hex>/lower     short names of the ancestors' diffs, nearest first, ':'-joined
  <root>/<chain-hex>/{diff-id,parent,size}
  <root>/l/                    short links, which keep overlay mount options under a page
  <root>/by-blob/<blob-hex>    diff ID of a compressed blob already unpacked once
  <root>/tmp/                  unpacks in progress
A layer is unpacked into tmp/ and renamed into place complete, so it is either fully
there or absent; two unpackers of one chain ID serialise on a lock and the loser of any
remaining race discards its copy.
"""

from __future__ import annotations

import base64
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .archive import apply_tar
from .content import ContentStore
from .digest import check_digest, sha256_digest
from .errors import DigestMismatch, InUse, NotFound
from .fsutil import fsync_dir, locked, remove_stale, remove_tree, scratch_dir, syncfs
from .fsutil import write_file_durably as _write
from .limits import DEFAULT_LIMITS, Limits

_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Layer:
    chain_id: str
    diff_id: str
    parent: str | None
    path: Path  # the diff directory
    size: int


def chain_id(parent: str | None, diff_id: str) -> str:
    """OCI chain ID: the diff ID of a base layer, else sha256("<parent chain> <diff id>")."""
    check_digest(diff_id)
    if parent is None:
        return diff_id
    check_digest(parent)
    return sha256_digest(f"{parent} {diff_id}".encode())


class LayerStore:
    def __init__(
        self,
        root: Path,
        content: ContentStore,
        limits: Limits = DEFAULT_LIMITS,
        durable: bool = True,
    ) -> None:
        """`durable` syncs each unpacked layer to disk before it becomes visible."""
        self.root = Path(root)
        self.content = content
        self.limits = limits
        self.durable = durable
        for sub in ("l", "by-blob", "tmp", "locks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # -- adding ---------------------------------------------------------------------------

    def unpack(
        self, blob_digest: str, parent: str | None, expected_diff_id: str | None = None
    ) -> Layer:
        """The layer of content blob `blob_digest` on top of `parent`, unpacked if needed."""
        diff_id = expected_diff_id or self._known_diff_id(blob_digest)
        if diff_id is not None and self.has(chain_id(parent, diff_id)):
            return self.get(chain_id(parent, diff_id))
        with self.content.open(blob_digest) as stream:
            layer = self.add_tar(stream, parent, expected_diff_id)
        self._write_small(self.root / "by-blob" / blob_digest[7:], layer.diff_id)
        return layer

    def add_tar(
        self, stream: BinaryIO, parent: str | None, expected_diff_id: str | None = None
    ) -> Layer:
        """The layer of a tar stream (any compression) on top of `parent`."""
        parent_layer = self.get(parent) if parent is not None else None
        if expected_diff_id is None:
            return self._unpack(stream, parent_layer, None)
        wanted = chain_id(parent, expected_diff_id)
        with locked(self._lock(wanted)):
            if self.has(wanted):
                return self.get(wanted)
            return self._unpack(stream, parent_layer, expected_diff_id)

    def _unpack(self, stream: BinaryIO, parent: Layer | None, expected: str | None) -> Layer:
        with scratch_dir(self.root / "tmp") as scratch:
            diff = scratch / "diff"
            diff.mkdir(0o755)
            applied = apply_tar(stream, diff, self.limits)
            if expected is not None and applied.diff_id != expected:
                raise DigestMismatch(f"layer has diff ID {applied.diff_id}, expected {expected}")
            cid = chain_id(parent.chain_id if parent else None, applied.diff_id)
            target = self.root / cid[7:]
            if target.exists():
                return self.get(cid)  # unpacked meanwhile by someone else
            link = self._new_link(cid)
            self._write_meta(scratch, parent, applied.diff_id, applied.size, link)
            try:
                if self.durable:
                    syncfs(scratch)
                os.rename(scratch, target)
            except OSError:
                (self.root / "l" / link).unlink()
                if target.exists():
                    return self.get(cid)
                raise
            fsync_dir(self.root)
        return self.get(cid)

    def _write_meta(
        self, scratch: Path, parent: Layer | None, diff_id: str, size: int, link: str
    ) -> None:
        (scratch / "link").write_text(link)
        (scratch / "diff-id").write_text(diff_id)
        (scratch / "size").write_text(str(size))
        if parent is not None:
            (scratch / "parent").write_text(parent.chain_id)
            lowers = [self._read(parent.chain_id, "link")]
            if parent_lower := self._read(parent.chain_id, "lower"):
                lowers.append(parent_lower)
            (scratch / "lower").write_text(":".join(lowers))
        else:
            (scratch / "lower").write_text("")

    def _new_link(self, cid: str) -> str:
        """Create l/<short> -> ../<chain-hex>/diff under a fresh random name."""
        while True:
            # 60 random bits in 12 characters: short enough for ~270 layers in one page.
            link = base64.b32encode(os.urandom(8)).decode()[:12]
            try:
                os.symlink(f"../{cid[7:]}/diff", self.root / "l" / link)
            except FileExistsError:
                continue
            return link

    # -- reading --------------------------------------------------------------------------

    def has(self, chain_id: str) -> bool:
        return (self.root / check_digest(chain_id) / "diff-id").is_file()

    def get(self, chain_id: str) -> Layer:
        if not self.has(chain_id):
            raise NotFound(f"layer {chain_id} not found")
        parent = self._read(chain_id, "parent") or None
        return Layer(
            chain_id=chain_id,
            diff_id=self._read(chain_id, "diff-id"),
            parent=parent,
            path=self.root / chain_id[7:] / "diff",
            size=int(self._read(chain_id, "size")),
        )

    def chain_ids(self) -> list[str]:
        return sorted(
            "sha256:" + name
            for name in os.listdir(self.root)
            if _HEX.fullmatch(name) and self.has("sha256:" + name)
        )

    def lower_links(self, chain_id: str) -> list[str]:
        """Short links (relative to root) of the layer and its ancestors, top first."""
        self.get(chain_id)
        links = [f"l/{self._read(chain_id, 'link')}"]
        if lower := self._read(chain_id, "lower"):
            links += [f"l/{name}" for name in lower.split(":")]
        return links

    def lower_dirs(self, chain_id: str | None) -> list[Path]:
        """Diff directories of the layer and its ancestors, top first."""
        dirs = []
        while chain_id is not None:
            layer = self.get(chain_id)
            dirs.append(layer.path)
            chain_id = layer.parent
        return dirs

    def _read(self, chain_id: str, name: str) -> str:
        try:
            return (self.root / chain_id[7:] / name).read_text()
        except FileNotFoundError:
            return ""

    def _known_diff_id(self, blob_digest: str) -> str | None:
        try:
            return (self.root / "by-blob" / check_digest(blob_digest)).read_text() or None
        except FileNotFoundError:
            return None

    # -- removing -------------------------------------------------------------------------

    def remove(self, chain_id: str) -> None:
        layer = self.get(chain_id)
        for other in self.chain_ids():
            if self._read(other, "parent") == chain_id:
                raise InUse(f"layer {chain_id} is the parent of {other}")
        link = self._read(chain_id, "link")
        with scratch_dir(self.root / "tmp") as scratch:
            # Renamed away first so the layer disappears at once, then deleted at leisure.
            os.rename(layer.path.parent, scratch / "layer")
            (self.root / "l" / link).unlink(missing_ok=True)
            fsync_dir(self.root)
        remove_tree(self._lock(chain_id))

    def clean(self, min_age: float = 10.0) -> int:
        """Remove leftovers of interrupted unpacks and dangling short links.

        A short link dangles for a moment during every unpack, hence `min_age`.
        """
        removed = remove_stale(self.root / "tmp", min_age)
        now = time.time()
        for entry in os.scandir(self.root / "l"):
            young = now - entry.stat(follow_symlinks=False).st_mtime < min_age
            if not young and not os.path.exists(entry.path):
                os.unlink(entry.path)
                removed += 1
        return removed

    def forget_blob(self, blob_digest: str) -> None:
        """Drop the remembered diff ID of a blob leaving the content store."""
        (self.root / "by-blob" / check_digest(blob_digest)).unlink(missing_ok=True)

    def _lock(self, chain_id: str) -> Path:
        return self.root / "locks" / chain_id[7:]

    @staticmethod
    def _write_small(path: Path, text: str) -> None:
        _write(path, text.encode())
