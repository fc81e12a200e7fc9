"""macvlan with a veth end as parent (this kernel has no dummy links), in a namespace of the
daemon's own: two containers reach each other; ipvlan, which this kernel does not support,
fails with the kernel's clear words and the daemon keeps serving."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from netns_daemon import in_netns, netns_daemon

from conftest import Daemon


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


@pytest.fixture
def parent_daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    """A daemon whose namespace has a veth pair up: mvp0 is the parent."""
    with netns_daemon(monkeypatch, "dymv") as (daemon, ns):
        in_netns(ns, "ip", "link", "add", "mvp0", "type", "veth", "peer", "name", "mvq0")
        in_netns(ns, "ip", "link", "set", "mvp0", "up")
        in_netns(ns, "ip", "link", "set", "mvq0", "up")
        daemon.start()
        yield daemon


def test_macvlan_on_a_veth_and_ipvlan_refused(parent_daemon):
    d = parent_daemon
    _ok(
        d.docker(
            "network", "create", "-d", "macvlan", "-o", "parent=mvp0",
            "--subnet", "10.216.0.0/24", "mv",
        )
    )  # fmt: skip
    network = json.loads(_ok(d.docker("network", "inspect", "mv")))[0]
    assert network["Driver"] == "macvlan" and network["Options"] == {"parent": "mvp0"}
    _ok(d.docker("run", "-d", "--name", "mva", "--network", "mv", "--ip", "10.216.0.10",
                 "busybox", "sleep", "60"))  # fmt: skip
    inside = _ok(d.docker("exec", "mva", "ip", "-o", "link", "show", "eth0"))
    mac = json.loads(_ok(d.docker("inspect", "mva")))[0]["NetworkSettings"]["Networks"]["mv"][
        "MacAddress"
    ]
    assert mac and mac in inside
    ping = d.docker("run", "--rm", "--network", "mv", "busybox", "ping", "-c", "2", "-W", "2",
                    "10.216.0.10")  # fmt: skip
    assert "2 packets received" in _ok(ping)
    _ok(d.docker("rm", "-f", "mva"))
    _ok(d.docker("network", "rm", "mv"))

    bad = d.docker("network", "create", "-d", "macvlan", "-o", "parent=nosuch0", "mv2")
    assert bad.returncode == 1
    assert "parent interface was not found on the host: nosuch0" in bad.stderr.decode()

    _ok(d.docker("network", "create", "-d", "ipvlan", "-o", "parent=mvp0", "iv"))
    refused = d.docker("run", "--rm", "--network", "iv", "busybox", "true")
    assert refused.returncode == 125
    message = refused.stderr.decode()
    assert "creating ipvlan on mvp0" in message and "Operation not supported" in message
    # nothing left of the failed start, and the daemon still serves
    assert _ok(d.docker("ps", "-aq")) == ""
    assert json.loads(_ok(d.docker("network", "inspect", "iv")))[0]["Containers"] == {}
    _ok(d.docker("network", "rm", "iv"))
    assert _ok(d.docker("run", "--rm", "busybox", "echo", "served")) == "served"
