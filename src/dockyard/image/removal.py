"""`docker rmi`: which names go, whether the image goes, and Docker's conflicts.

The decisions follow daemon/images/image_delete.go: a name is untagged first (refused without
force when a container uses the image through its last name); the image itself is deleted
only when no name, child image or container needs it (names and stopped containers yield to
force, children and running containers never); then parents left unnamed are pruned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import Conflict
from .reference import Reference, parse_any

if TYPE_CHECKING:
    from .store import ImageStore


@dataclass(frozen=True)
class ContainerUse:
    """A container using an image, as the engine reports it for removal checks."""

    id: str
    running: bool


ContainerLookup = Callable[[str], Sequence[ContainerUse]]


def no_containers(_image_id: str) -> Sequence[ContainerUse]:
    return ()


class Removal:
    """One `docker rmi`, following daemon/images/image_delete.go's decisions."""

    def __init__(
        self, store: ImageStore, force: bool, prune: bool, containers: ContainerLookup
    ) -> None:
        self.store, self.force, self.prune, self.containers = store, force, prune, containers
        self.records: list[dict[str, str]] = []

    def untag(self, ref: Reference) -> None:
        self.store.untag(str(ref))
        self.records.append({"Untagged": ref.familiar})

    def run(self, name_or_id: str) -> list[dict[str, str]]:
        image_id = self.store.resolve(name_or_id)
        refs = self.store.refs_of(image_id)
        named = not _is_id_prefix(image_id, name_or_id)
        if named:
            ref = parse_any(name_or_id)
            assert isinstance(ref, Reference)  # an ID would have been an ID prefix
            ref = ref.docker_ref()
            if not self.force and _single_reference(refs):
                users = self.containers(image_id)
                if users:
                    raise Conflict(
                        f'conflict: unable to remove repository reference "{name_or_id}" '
                        f"(must force) - container {users[0].id[:12]} is using its referenced "
                        f"image {image_id[7:19]}"
                    )
            self.untag(ref)
            refs = self.store.refs_of(image_id)
            if ref.tag is not None and not any(
                r.tag is not None and r.repository == ref.repository for r in refs
            ):
                # The last tag of a repository takes that repository's digests with it.
                for other in [r for r in refs if r.digest and r.repository == ref.repository]:
                    self.untag(other)
                refs = self.store.refs_of(image_id)
            if refs:
                return self.records
        elif _single_reference(refs):
            # Deleting by ID takes the image's names with it, if they are all one repository.
            self.check(image_id, soft=not self.force, references=False)
            for ref in refs:
                self.untag(ref)
        self.delete(image_id, self.force, self.prune, quiet=named)
        return self.records

    def delete(self, image_id: str, force: bool, prune: bool, quiet: bool) -> None:
        """Remove the image unless something needs it, then its unnamed parents if `prune`."""
        try:
            self.check(image_id, soft=not force, references=True)
        except _ImageConflict as conflict:
            dangling = not self.store.refs_of(image_id) and not self.store.children(image_id)
            # Quiet: after untagging, or pruning a parent: a conflict there is no error,
            # unless the image would be left unnamed and unused.
            if quiet and (not dangling or conflict.used):
                return
            raise
        parent = self.store.get(image_id).parent
        for ref in self.store.refs_of(image_id):
            self.untag(ref)
        dropped = self.store.delete_image(image_id)
        self.records.append({"Deleted": image_id})
        self.records.extend({"Deleted": chain} for chain in dropped)
        if prune and parent:
            self.delete(parent, force=False, prune=True, quiet=True)

    def check(self, image_id: str, *, soft: bool, references: bool) -> None:
        """Raise the first reason not to delete: hard ones always, soft ones (names, stopped
        containers) if `soft`."""
        users = self.containers(image_id)
        if self.store.children(image_id):
            raise _ImageConflict(image_id, "image has dependent child images", hard=True)
        if running := [u for u in users if u.running]:
            raise _ImageConflict(
                image_id,
                f"image is being used by running container {running[0].id[:12]}",
                hard=True,
                used=True,
            )
        if soft and references and self.store.refs_of(image_id):
            raise _ImageConflict(image_id, "image is referenced in multiple repositories")
        if soft and (stopped := [u for u in users if not u.running]):
            raise _ImageConflict(
                image_id,
                f"image is being used by stopped container {stopped[0].id[:12]}",
                used=True,
            )


class _ImageConflict(Conflict):
    def __init__(self, image_id: str, message: str, hard: bool = False, used: bool = False):
        how = "cannot be forced" if hard else "must be forced"
        super().__init__(f"conflict: unable to delete {image_id[7:19]} ({how}) - {message}")
        self.used = used


def _is_id_prefix(image_id: str, text: str) -> bool:
    hex_id = image_id[7:]
    candidate = text.removeprefix("sha256:")
    return bool(candidate) and hex_id.startswith(candidate)


def _single_reference(refs: list[Reference]) -> bool:
    """At most one tag, and every name in one repository (Docker's isSingleReference)."""
    if len(refs) <= 1:
        return len(refs) == 1
    tags = [r for r in refs if r.tag is not None]
    if len(tags) > 1:
        return False
    repositories = {r.repository for r in refs}
    single = tags[0] if tags else refs[0]
    return repositories == {single.repository}
