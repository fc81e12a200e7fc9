"""Forwarding for our bridges on a host whose FORWARD policy is DROP (as dockerd leaves it),
without touching the real host: the daemon runs in a network namespace of its own whose
nftables ruleset is an iptables-style `ip filter FORWARD` chain dropping by policy."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns_daemon import in_netns, netns_daemon

from conftest import Daemon

NS_ADDRESS = "10.215.0.2"
# the last line of /hostname served by busybox httpd
GET = "printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port} | tail -n 1"
DROPPING = """table ip filter {
  chain FORWARD { type filter hook forward priority filter; policy drop; }
}
"""


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


def make_netns(ns: str) -> None:
    """An address of its own (a veth end) and FORWARD dropping by policy."""
    in_netns(ns, "ip", "link", "add", "fwa0", "type", "veth", "peer", "name", "fwb0")
    in_netns(ns, "ip", "addr", "add", f"{NS_ADDRESS}/24", "dev", "fwa0")
    in_netns(ns, "ip", "link", "set", "fwa0", "up")
    in_netns(ns, "ip", "link", "set", "fwb0", "up")
    in_netns(ns, "nft", "-f", "-", input=DROPPING)


@pytest.fixture
def dropping_daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Daemon, str]]:
    with netns_daemon(monkeypatch, "dyfw") as (daemon, ns):
        make_netns(ns)
        daemon.start()
        yield daemon, ns


def _forward_chain(ns: str) -> dict:
    listing = json.loads(in_netns(ns, "nft", "-j", "list", "chain", "ip", "filter", "FORWARD"))
    chain = next(item["chain"] for item in listing["nftables"] if "chain" in item)
    rules = [item["rule"] for item in listing["nftables"] if "rule" in item]
    return {"policy": chain["policy"], "comments": [r.get("comment") for r in rules]}


def test_forwarding_through_a_dropping_forward_chain(dropping_daemon):
    daemon, ns = dropping_daemon
    table = f"dockyard_{daemon.bridge}"
    _ok(daemon.docker("network", "create", "fwnet"))
    _ok(
        daemon.docker(
            "run", "-d", "--name", "fwweb", "--network", "fwnet", "-p", "8080:80",
            "busybox", "httpd", "-f", "-p", "80", "-h", "/etc",
        )
    )  # fmt: skip
    chain = _forward_chain(ns)
    assert chain["policy"] == "drop"
    # accept rules of ours, in and out of each of our bridges, tagged with our table
    assert chain["comments"].count(table) == 4, chain
    hostname = _ok(daemon.docker("inspect", "-f", "{{.Config.Hostname}}", "fwweb"))
    by_name = daemon.docker(
        "run",
        "--rm",
        "--network",
        "fwnet",
        "busybox",
        "sh",
        "-c",
        GET.format(host="fwweb", port=80),
    )
    assert _ok(by_name).endswith(hostname)
    # through the namespace's own address: DNAT, then forwarded back into the bridge
    published = daemon.docker(
        "run", "--rm", "--network", "fwnet", "busybox", "sh", "-c",
        GET.format(host=NS_ADDRESS, port=8080),
    )  # fmt: skip
    assert _ok(published).endswith(hostname)
    _ok(daemon.docker("rm", "-f", "fwweb"))
    _ok(daemon.docker("network", "rm", "fwnet"))
    assert _forward_chain(ns)["comments"].count(table) == 2  # the default bridge's only
    daemon.stop()
    # nothing running: the daemon leaves the namespace's chain as it found it
    assert _forward_chain(ns) == {"policy": "drop", "comments": []}
    assert Path("/run/netns", ns).exists()
