"""Named network namespaces: a bind-mounted nsfs file, as `ip netns add` makes, so the
namespace lives as long as the file does, whoever runs in it."""

from __future__ import annotations

import ctypes
import os

from pyroute2 import IPRoute

from dockyard.network import nsthread
from dockyard.network.errors import NetworkError

MNT_DETACH = 2


def _make_with_loopback(path: str) -> None:
    nsthread.make(path)
    with IPRoute() as ip:
        ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")


def create(path: str) -> None:
    """A new network namespace at `path` with its loopback up."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    if os.path.exists(path):
        remove(path)
    try:
        nsthread.run(_make_with_loopback, path)
    except OSError as error:
        remove(path)
        raise NetworkError(f"creating network namespace {path}: {error}") from None


def remove(path: str) -> None:
    """Unmount and delete; the kernel frees the namespace (and its veth ends) when unused."""
    ctypes.CDLL(None, use_errno=True).umount2(path.encode(), MNT_DETACH)
    try:
        os.unlink(path)
    except OSError:
        pass


def listing(directory: str) -> list[str]:
    try:
        return [os.path.join(directory, name) for name in os.listdir(directory)]
    except FileNotFoundError:
        return []
