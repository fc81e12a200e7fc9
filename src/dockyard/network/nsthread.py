"""Netlink work in a fresh thread, optionally inside a network namespace.

A thread may enter another network namespace (setns) or make a new one (unshare) without
affecting the rest of the daemon, and sockets it creates stay in that namespace. pyroute2's
own netns support forks the daemon, and a forked child's signal handlers write into the
daemon's asyncio wakeup fd (the daemon then believes it got SIGTERM): never used here. A
fresh thread also has no running asyncio loop, which pyroute2's sync API requires."""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def enter(path: str) -> None:
    """Move the calling thread into the namespace at `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {path}")
    finally:
        os.close(fd)


def make(path: str) -> None:
    """Move the calling thread into a new namespace and pin it at `path` (a bind mount)."""
    _check(_libc.unshare(CLONE_NEWNET), "unshare")
    with open(path, "x"):
        pass
    source = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
    _check(_libc.mount(source, path.encode(), None, MS_BIND, None), f"mount {path}")


def run(function: Callable[..., R], *args, netns: str | None = None) -> R:
    """function(*args) in a new thread, inside `netns` when given; exceptions propagate."""
    outcome: dict = {}

    def body() -> None:
        try:
            if netns is not None:
                enter(netns)
            outcome["result"] = function(*args)
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=body, name="netlink")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def threaded(function: Callable[P, R]) -> Callable[P, R]:
    """Run every call of `function` in a fresh thread (see the module's doc)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return run(functools.partial(function, *args, **kwargs))

    return wrapper
