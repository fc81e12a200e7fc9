"""A dockyard daemon in a network namespace of its own, so a test can shape "the host"
(links, nftables) without touching the real one."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import conftest
from conftest import Daemon, new_daemon


def in_netns(ns: str, *args: str, input: str | None = None) -> str:
    """Only the network namespace: `ip netns exec` would remount /sys and hide cgroups."""
    result = subprocess.run(
        ["nsenter", f"--net=/run/netns/{ns}", *args], input=input, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@contextmanager
def netns_daemon(monkeypatch: pytest.MonkeyPatch, prefix: str) -> Iterator[tuple[Daemon, str]]:
    """(daemon, namespace name); `prefix` names the namespace. Both go away even on failure."""
    ns = f"{prefix}{uuid.uuid4().hex[:8]}"
    daemon = new_daemon()
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        in_netns(ns, "ip", "link", "set", "lo", "up")
        # the fixture's start, with the real dockyard binary launched through nsenter
        wrapper = daemon.root / "dockyard-in-netns"
        wrapper.write_text(
            f'#!/bin/sh\nexec nsenter --net=/run/netns/{ns} {conftest.DOCKYARD} "$@"\n'
        )
        wrapper.chmod(0o755)
        monkeypatch.setattr(conftest, "DOCKYARD", str(wrapper))
        yield daemon, ns
    finally:
        daemon.cleanup()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["rm", "-rf", str(daemon.root)], check=False)
