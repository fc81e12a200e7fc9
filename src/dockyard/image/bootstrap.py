"""Images made on this host without a registry: `dockyard image bootstrap busybox|debian:<suite>`.

The root filesystem comes from rootfs.py; it is imported as a one-layer image with the
config Docker's official image of the same name has, and tagged.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..storage.archive import write_tree
from .errors import InvalidArgument
from .importer import import_rootfs
from .reference import parse_tag_target
from .rootfs import BUSYBOX_BINARY, make_busybox_rootfs, make_debian_rootfs, unmount_under
from .store import Image, ImageStore

PATH_ENV = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SUITE = re.compile(r"[a-z][a-z0-9-]*")


Maker = Callable[[ImageStore, Path], Image]


def bootstrap(store: ImageStore, what: str, scratch: Path, *, mirror: str | None = None) -> Image:
    """`busybox` -> busybox:latest; `debian` or `debian:<suite>` -> debian:<suite> (bookworm
    by default), from `mirror` or the host's apt mirror."""
    return bootstrapper(what, mirror=mirror)(store, scratch)


def bootstrapper(what: str, *, mirror: str | None = None) -> Maker:
    """The function making the image `what` names, refusing a bad name at once."""
    name, _, suite = what.partition(":")
    if name == "busybox" and not suite:
        return bootstrap_busybox
    if name == "debian":
        suite = suite or "bookworm"
        if not _SUITE.fullmatch(suite):
            raise InvalidArgument(f"invalid Debian suite {suite!r}")
        return lambda store, scratch: bootstrap_debian(store, scratch, suite, mirror=mirror)
    raise InvalidArgument(f"cannot bootstrap {what!r}: expected busybox or debian:<suite>")


def bootstrap_busybox(store: ImageStore, scratch: Path, tag: str = "busybox:latest") -> Image:
    version = subprocess.run(
        [str(BUSYBOX_BINARY)], capture_output=True, text=True, check=False
    ).stdout.split("\n", 1)[0]
    return _bootstrap(
        store,
        scratch,
        make_busybox_rootfs,
        changes=[PATH_ENV, 'CMD ["sh"]'],
        created_by=f"dockyard image bootstrap busybox ({version.strip() or 'busybox-static'})",
        tag=tag,
    )


def bootstrap_debian(
    store: ImageStore,
    scratch: Path,
    suite: str = "bookworm",
    *,
    mirror: str | None = None,
    tag: str | None = None,
) -> Image:
    if not _SUITE.fullmatch(suite):
        raise InvalidArgument(f"invalid Debian suite {suite!r}")
    return _bootstrap(
        store,
        scratch,
        lambda dest: make_debian_rootfs(dest, suite, mirror),
        changes=[PATH_ENV, 'CMD ["bash"]'],
        created_by=f"dockyard image bootstrap debian:{suite} (debootstrap --variant=minbase)",
        tag=tag or f"debian:{suite}",
    )


def _bootstrap(
    store: ImageStore,
    scratch: Path,
    make: Callable[[Path], Path],
    *,
    changes: list[str],
    created_by: str,
    tag: str,
) -> Image:
    ref = parse_tag_target(tag)  # refuse a bad tag before the slow part
    with tempfile.TemporaryDirectory(dir=scratch, prefix="bootstrap-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        try:
            make(rootfs)
            layer = Path(tmp) / "layer.tar"
            with open(layer, "wb") as out:
                write_tree(rootfs, out)
        finally:
            unmount_under(rootfs)  # whatever the maker left mounted, before the removal
        return import_rootfs(store, layer, changes=changes, created_by=created_by, tags=[ref])
