"""IPC sharing as dockerd does it. A "shareable" container's /dev/shm is a tmpfs the daemon
mounts under the container's directory (mounts/shm) and binds into it; containers started with
`--ipc container:<it>` join its IPC namespace and bind the same tmpfs. (A tmpfs mounted inside
a container's own mount namespace could not be bound from outside it.)"""

from __future__ import annotations

import os
from pathlib import Path

from dockyard.engine.errors import Conflict, InvalidArgument
from dockyard.runtime import linux

MODES = ("none", "private", "shareable", "host")


def validate(mode: str) -> None:
    if mode not in MODES and not (mode.startswith("container:") and len(mode) > 10):
        raise InvalidArgument(f"invalid IPC mode: {mode}")


def shm_path(container_dir: Path) -> Path:
    return container_dir / "mounts" / "shm"


def mount_shareable(container_dir: Path, size: int) -> str:
    """The shareable container's /dev/shm, mounted if it is not already (a restart reuses it)."""
    path = shm_path(container_dir)
    path.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(path):
        flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
        linux.mount("shm", str(path), "tmpfs", flags, f"mode=1777,size={size}")
    return str(path)


def donor_shm(donor_dir: Path, donor_id: str) -> str:
    path = shm_path(donor_dir)
    if not os.path.ismount(path):
        raise Conflict(
            f"can't join IPC of container {donor_id}: non-shareable IPC "
            "(hint: use IpcMode:shareable for the donor container)"
        )
    return str(path)


def unmount_shareable(container_dir: Path) -> None:
    path = shm_path(container_dir)
    if os.path.ismount(path):
        linux.umount(str(path), linux.MNT_DETACH)
