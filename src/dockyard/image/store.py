"""The image store: images, their layers and names, over the metadata database.

The database says what exists (images, tags, which layers each image uses); the content store
holds configs and layer blobs; the layer store holds unpacked layers. Blobs and layers are
written before the transaction that references them and removed after the transaction that
drops the last reference, so a crash leaves at worst unreferenced files, which the storage
garbage collector removes (`gc_roots` says what to keep); never a reference to something
missing.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..storage.content import ContentStore
from ..storage.errors import InUse
from ..storage.errors import NotFound as StorageNotFound
from ..storage.layers import LayerStore
from ..store import Database
from .config import ImageConfig, parse_config, unix_time
from .errors import InvalidImage, NotFound
from .manifest import DOCKER_CONFIG, OCI_LAYER
from .reference import Reference, parse, parse_any, parse_tag_target
from .removal import ContainerLookup, Removal, no_containers

_HEX_PREFIX = re.compile(r"[0-9a-f]{1,64}")


@dataclass(frozen=True)
class Blob:
    """A layer blob already in the content store, as a manifest describes it."""

    digest: str
    media_type: str = OCI_LAYER


@dataclass(frozen=True)
class ImageLayer:
    chain_id: str
    diff_id: str
    blob_digest: str
    blob_media_type: str
    blob_size: int
    size: int  # unpacked


@dataclass(frozen=True)
class Image:
    id: str
    config: ImageConfig
    layers: tuple[ImageLayer, ...]
    repo_tags: tuple[str, ...]  # familiar form, e.g. busybox:latest
    repo_digests: tuple[str, ...]
    parent: str  # "" when the image has no local parent
    size: int
    added: float

    @property
    def short_id(self) -> str:
        return self.id[7:19]

    @property
    def top_layer(self) -> str | None:
        """Chain ID of the top layer: what a container's rootfs snapshot starts from."""
        return self.layers[-1].chain_id if self.layers else None


@dataclass(frozen=True)
class HistoryItem:
    """One line of `docker history`, newest first."""

    id: str  # the image ID where known, else "<missing>"
    created: int
    created_by: str
    tags: tuple[str, ...]
    size: int
    comment: str


def _layer(row: sqlite3.Row) -> ImageLayer:
    return ImageLayer(
        row["chain_id"],
        row["diff_id"],
        row["blob_digest"],
        row["blob_media_type"],
        row["blob_size"],
        row["size"],
    )


class ImageStore:
    def __init__(self, db: Database, content: ContentStore, layers: LayerStore) -> None:
        self.db = db
        self.content = content
        self.layers = layers
        # Serialises changes here: unpacking and referencing a layer must not interleave with
        # removing it as unreferenced.
        self._lock = threading.RLock()

    # -- adding -----------------------------------------------------------------------------

    def create(
        self,
        config: ImageConfig,
        blobs: Sequence[Blob],
        *,
        parent: str | None = None,
        tags: Iterable[Reference] = (),
        config_media_type: str = DOCKER_CONFIG,
    ) -> Image:
        """Register an image from its config and its layer blobs (bottom first, already in
        the content store), unpacking layers not yet unpacked. Idempotent; `tags` are set
        (moved if they pointed elsewhere)."""
        if len(blobs) != len(config.diff_ids):
            raise InvalidImage(
                f"invalid manifest, layers length mismatch: expected {len(config.diff_ids)}, "
                f"got {len(blobs)}"
            )
        with self._lock:
            layers = self._unpack_all(config.diff_ids, blobs)
            self.content.write(config.raw, expected=config.id, media_type=config_media_type)
            with self.db.transaction() as conn:
                if conn.execute("SELECT 1 FROM images WHERE id = ?", (config.id,)).fetchone():
                    unused = [layer.blob_digest for layer in layers]
                else:
                    unused = self._insert(conn, config, layers, parent)
                for ref in tags:
                    self._set_ref(conn, ref, config.id)
                unused = [d for d in unused if not self._blob_in_use(conn, d)]
            # Blobs handed over for layers already stored from another blob: not needed.
            for digest in dict.fromkeys(unused):
                self._delete_blob(digest)
        return self.get(config.id)

    def _unpack_all(self, diff_ids: Sequence[str], blobs: Sequence[Blob]) -> list[ImageLayer]:
        out, parent = [], None
        for diff_id, blob in zip(diff_ids, blobs, strict=True):
            layer = self.layers.unpack(blob.digest, parent, expected_diff_id=diff_id)
            size = self.content.size(blob.digest)
            out.append(
                ImageLayer(layer.chain_id, diff_id, blob.digest, blob.media_type, size, layer.size)
            )
            parent = layer.chain_id
        return out

    def _insert(
        self,
        conn: sqlite3.Connection,
        config: ImageConfig,
        layers: list[ImageLayer],
        parent: str | None,
    ) -> list[str]:
        """Insert the image rows; return blobs that turned out not to be needed."""
        unused, parent_chain = [], None
        for layer in layers:
            inserted = conn.execute(
                "INSERT OR IGNORE INTO layers VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    layer.chain_id,
                    layer.diff_id,
                    parent_chain,
                    layer.blob_digest,
                    layer.blob_media_type,
                    layer.blob_size,
                    layer.size,
                ),
            ).rowcount
            if not inserted:
                unused.append(layer.blob_digest)
            parent_chain = layer.chain_id
        platform = config.platform
        conn.execute(
            "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                config.id,
                parent,
                config.created,
                platform.os,
                platform.architecture,
                platform.variant,
                sum(layer.size for layer in layers),
                time.time(),
            ),
        )
        conn.executemany(
            "INSERT INTO image_layers VALUES (?, ?, ?)",
            [(config.id, i, layer.chain_id) for i, layer in enumerate(layers)],
        )
        return unused

    def set_parent(self, image_id: str, parent_id: str) -> None:
        """Record a local parent (a build step, or what a loaded archive said)."""
        with self._lock, self.db.transaction() as conn:
            conn.execute("UPDATE images SET parent = ? WHERE id = ?", (parent_id, image_id))

    # -- names ------------------------------------------------------------------------------

    def tag(self, source: str, target: str) -> Reference:
        """`docker tag SOURCE TARGET`: point TARGET (a repo:tag) at the image SOURCE names."""
        ref = parse_tag_target(target)
        image = self.get(source)
        with self._lock, self.db.transaction() as conn:
            self._set_ref(conn, ref, image.id)
        return ref

    def add_ref(self, ref: Reference, image_id: str) -> str | None:
        """Point a repo:tag or repo@digest at an image; return the image it pointed at before,
        if another one."""
        with self._lock, self.db.transaction() as conn:
            return self._set_ref(conn, ref, image_id)

    @staticmethod
    def _set_ref(conn: sqlite3.Connection, ref: Reference, image_id: str) -> str | None:
        ref = ref.docker_ref()
        name = str(ref)
        old = conn.execute("SELECT image_id FROM image_refs WHERE name = ?", (name,)).fetchone()
        conn.execute(
            "INSERT OR REPLACE INTO image_refs VALUES (?, ?, ?, ?, ?)",
            (name, ref.repository, ref.tag, ref.digest, image_id),
        )
        return old[0] if old and old[0] != image_id else None

    def untag(self, name: str) -> str:
        """Remove one repo:tag or repo@digest name; return it in familiar form."""
        ref = parse_any(name)
        if isinstance(ref, str):
            raise InvalidImage(f"cannot untag an image ID: {name}")
        key = str(ref.docker_ref())
        with self._lock, self.db.transaction() as conn:
            if not conn.execute("DELETE FROM image_refs WHERE name = ?", (key,)).rowcount:
                raise NotFound(f"No such image: {ref.docker_ref().familiar}")
        return ref.docker_ref().familiar

    # -- reading ----------------------------------------------------------------------------

    def lookup(self, ref: Reference) -> str | None:
        """The image a repo:tag or repo@digest points at (a bare name means :latest)."""
        rows = self.db.query(
            "SELECT image_id FROM image_refs WHERE name = ?", (str(ref.docker_ref()),)
        )
        return rows[0][0] if rows else None

    def names(self, repository: str | None = None) -> list[tuple[Reference, str]]:
        """(name, image ID) of every tag and digest name, or those of one repository."""
        sql, params = "SELECT name, image_id FROM image_refs", ()
        if repository is not None:
            sql, params = sql + " WHERE repository = ?", (repository,)
        rows = self.db.query(sql + " ORDER BY name", params)
        return [(parse(r["name"]), r["image_id"]) for r in rows]

    def refs_of(self, image_id: str) -> list[Reference]:
        """The names pointing at an image, in Docker's order (by familiar form)."""
        rows = self.db.query("SELECT name FROM image_refs WHERE image_id = ?", (image_id,))
        return sorted((parse(r[0]) for r in rows), key=lambda ref: ref.familiar)

    def known_layer(self, chain_id: str) -> ImageLayer | None:
        """The stored layer with this chain ID, if an image or a hold keeps it."""
        rows = self.db.query("SELECT * FROM layers WHERE chain_id = ?", (chain_id,))
        return _layer(rows[0]) if rows else None

    def resolve(self, name_or_id: str) -> str:
        """The image ID that a name, a digest reference, a full ID or a unique ID prefix
        names, as Docker resolves them."""
        ref = parse_any(name_or_id)
        if isinstance(ref, str):
            if self.db.query("SELECT 1 FROM images WHERE id = ?", (ref,)):
                return ref
            raise NotFound(f"No such image: {ref}")
        image_id = self.lookup(ref)
        if image_id is not None:
            return image_id
        prefix = name_or_id.removeprefix("sha256:")
        if _HEX_PREFIX.fullmatch(prefix):
            rows = self.db.query(
                "SELECT id FROM images WHERE substr(id, 8, ?) = ? LIMIT 2", (len(prefix), prefix)
            )
            if len(rows) == 1:  # an ambiguous prefix names nothing, as in Docker
                return rows[0][0]
        raise NotFound(f"No such image: {ref.tagged_default().familiar}")

    def get(self, name_or_id: str) -> Image:
        image_id = self.resolve(name_or_id)
        rows = self.db.query("SELECT * FROM images WHERE id = ?", (image_id,))
        if not rows:
            raise NotFound(f"No such image: {name_or_id}")  # removed meanwhile
        return self._image(rows[0])

    def _image(self, row: sqlite3.Row) -> Image:
        image_id = row["id"]
        layers = tuple(
            _layer(r)
            for r in self.db.query(
                "SELECT l.* FROM image_layers il JOIN layers l USING (chain_id) "
                "WHERE il.image_id = ? ORDER BY il.position",
                (image_id,),
            )
        )
        refs = self.refs_of(image_id)
        tags = [ref.familiar for ref in refs if ref.tag is not None]
        digests = [ref.familiar for ref in refs if ref.tag is None]
        return Image(
            id=image_id,
            config=parse_config(self.content.read(image_id)),
            layers=layers,
            repo_tags=tuple(tags),
            repo_digests=tuple(digests),
            parent=row["parent"] or "",
            size=row["size"],
            added=row["added"],
        )

    def list(self, *, all: bool = False, dangling: bool | None = None) -> list[Image]:
        """Images as `docker images` lists them, newest first: untagged images with children
        (intermediate build steps) only with `all`; `dangling` True keeps only untagged
        images, False only tagged ones."""
        with_children = {
            r[0]
            for r in self.db.query("SELECT DISTINCT parent FROM images WHERE parent IS NOT NULL")
        }
        out = []
        for row in self.db.query("SELECT * FROM images"):
            image = self._image(row)
            if not image.repo_tags and not image.repo_digests:
                if (image.id in with_children and not all) or dangling is False:
                    continue
            elif dangling and image.repo_tags:
                continue
            out.append(image)
        return sorted(out, key=lambda image: (-image.config.created_unix, image.id))

    def children(self, image_id: str) -> list[str]:
        return [r[0] for r in self.db.query("SELECT id FROM images WHERE parent = ?", (image_id,))]

    def history(self, name_or_id: str) -> list[HistoryItem]:
        """`docker history`: one item per history entry, newest first. IDs are known along the
        chain of local parents; the rest are `<missing>`, as in Docker."""
        image = self.get(name_or_id)
        items, layer_index = [], 0
        for entry in image.config.history:
            size = 0
            if not entry.empty_layer:
                size = image.layers[layer_index].size
                layer_index += 1
            items.append([entry, size])
        items.reverse()
        result, current = [], image
        for entry, size in items:
            if current is not None:
                item_id, tags = current.id, current.repo_tags
                current = self._parent_of(current)
            else:
                item_id, tags = "<missing>", ()
            result.append(
                HistoryItem(
                    item_id, unix_time(entry.created), entry.created_by, tags, size, entry.comment
                )
            )
        return result

    def _parent_of(self, image: Image) -> Image | None:
        if not image.parent:
            return None
        try:
            return self.get(image.parent)
        except NotFound:
            return None

    # -- removing ---------------------------------------------------------------------------

    def remove(
        self,
        name_or_id: str,
        *,
        force: bool = False,
        prune: bool = True,
        containers: ContainerLookup = no_containers,
    ) -> list[dict[str, str]]:
        """`docker rmi`: Docker's rules and messages, returning its records
        ([{"Untagged": name}, {"Deleted": id}, ...]). `containers` tells which containers use
        an image; `prune` also removes parents left without names or children."""
        with self._lock:
            return Removal(self, force, prune, containers).run(name_or_id)

    def delete_image(self, image_id: str) -> list[str]:
        """Drop an image and its names, unconditionally (`remove` decides whether to); return
        the chain IDs of layers it left unused."""
        with self.db.transaction() as conn:
            chains = [
                r[0]
                for r in conn.execute(
                    "SELECT chain_id FROM image_layers WHERE image_id = ? ORDER BY position DESC",
                    (image_id,),
                )
            ]
            conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
            dropped = self._drop_unreferenced_layers(conn, chains)
        self._delete_blob(image_id)
        return dropped

    def hold(self, holder: str, chain_id: str) -> None:
        """Keep a layer (and its ancestors, which it needs) while `holder` uses it, whatever
        happens to the images that brought it."""
        with self._lock, self.db.transaction() as conn:
            if not conn.execute("SELECT 1 FROM layers WHERE chain_id = ?", (chain_id,)).fetchone():
                raise NotFound(f"layer {chain_id} not found")
            conn.execute("INSERT OR IGNORE INTO layer_holds VALUES (?, ?)", (holder, chain_id))

    def release(self, holder: str) -> list[str]:
        """Drop `holder`'s holds; return the chain IDs of layers removed as unused."""
        with self._lock, self.db.transaction() as conn:
            rows = conn.execute("SELECT chain_id FROM layer_holds WHERE holder = ?", (holder,))
            chains = [r[0] for r in rows]
            conn.execute("DELETE FROM layer_holds WHERE holder = ?", (holder,))
            ancestry = [c for chain in chains for c in self._ancestry(conn, chain)]
            return self._drop_unreferenced_layers(conn, ancestry)

    @staticmethod
    def _ancestry(conn: sqlite3.Connection, chain_id: str) -> list[str]:
        out: list[str] = []
        while chain_id is not None:
            out.append(chain_id)
            row = conn.execute("SELECT parent FROM layers WHERE chain_id = ?", (chain_id,))
            chain_id = (row.fetchone() or [None])[0]
        return out

    def _drop_unreferenced_layers(self, conn: sqlite3.Connection, chains: list[str]) -> list[str]:
        """Delete rows of the given layers (top first) that nothing references any more, and
        after the commit their files. A layer is referenced by an image using it, a hold on
        it or on a layer above it, or a remaining layer on top of it."""
        dropped = []
        for chain in dict.fromkeys(chains):
            used = conn.execute(
                "SELECT 1 FROM image_layers WHERE chain_id = ?1 "
                "UNION ALL SELECT 1 FROM layer_holds WHERE chain_id = ?1 "
                "UNION ALL SELECT 1 FROM layers WHERE parent = ?1 LIMIT 1",
                (chain,),
            ).fetchone()
            if used:
                continue
            row = conn.execute("SELECT blob_digest FROM layers WHERE chain_id = ?", (chain,))
            blob = row.fetchone()
            conn.execute("DELETE FROM layers WHERE chain_id = ?", (chain,))
            dropped.append((chain, blob[0] if blob else None))
        # Files go only once the rows are gone for good; see the module doc.
        self.db.after_commit(lambda: self._remove_layer_files(dropped))
        return [chain for chain, _ in dropped]

    def _remove_layer_files(self, dropped: list[tuple[str, str | None]]) -> None:
        for chain, blob in dropped:
            try:
                self.layers.remove(chain)
            except (StorageNotFound, InUse):
                pass  # already gone, or still under a layer being added: collect_garbage
            if blob and not self.db.query("SELECT 1 FROM layers WHERE blob_digest = ?", (blob,)):
                self._delete_blob(blob)

    def _blob_in_use(self, conn: sqlite3.Connection, digest: str) -> bool:
        return bool(
            conn.execute(
                "SELECT 1 FROM layers WHERE blob_digest = ?1 UNION ALL "
                "SELECT 1 FROM images WHERE id = ?1 LIMIT 1",
                (digest,),
            ).fetchone()
        )

    def _delete_blob(self, digest: str) -> None:
        try:
            self.content.delete(digest)
        except StorageNotFound:
            pass
        self.layers.forget_blob(digest)

    def gc_roots(self) -> tuple[frozenset[str], frozenset[str]]:
        """What images keep alive, for the storage garbage collector: the content digests
        (configs and layer blobs) and the chain IDs of every layer in use."""
        blobs = self.db.query("SELECT id FROM images UNION SELECT blob_digest FROM layers")
        chains = self.db.query("SELECT chain_id FROM layers")
        return frozenset(r[0] for r in blobs), frozenset(r[0] for r in chains)

    def discard(self, digests: Iterable[str]) -> None:
        """Delete blobs a failed add left behind, unless an image or layer uses them."""
        with self._lock:
            for digest in dict.fromkeys(digests):
                with self.db.transaction() as conn:
                    in_use = self._blob_in_use(conn, digest)
                if not in_use:
                    self._delete_blob(digest)
