"""UDP between containers by name on a user network, and --link on the default bridge."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest


def _ok(result) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


def _subnet(daemon) -> str:
    return f"10.201.{int(daemon.suffix, 16) % 200 + 20}.0/24"


@pytest.fixture(scope="module")
def udpecho(tmp_path_factory) -> Path:
    """A static UDP peer, bind-mounted into the containers."""
    binary = tmp_path_factory.mktemp("udp") / "udpecho"
    source = Path(__file__).parent / "tools" / "udpecho.c"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(binary), str(source)], check=True)
    binary.parent.chmod(0o755)
    return binary


def test_udp_between_containers_by_name(daemon, udpecho):
    network = f"udp{uuid.uuid4().hex[:6]}"
    _ok(daemon.docker("network", "create", "--subnet", _subnet(daemon), network))
    server = f"udpsrv{uuid.uuid4().hex[:6]}"
    tool = f"{udpecho}:/udpecho:ro"
    try:
        _ok(
            daemon.docker(
                "run",
                "-d",
                "--name",
                server,
                "--network",
                network,
                "-v",
                tool,
                "busybox",
                "/udpecho",
                "serve",
                "5353",
            )
        )
        # The name resolves through the embedded DNS; the datagram crosses the bridge.
        output = _ok(
            daemon.docker(
                "run",
                "--rm",
                "--network",
                network,
                "-v",
                tool,
                "busybox",
                "sh",
                "-c",
                f"ip=$(nslookup {server} 127.0.0.11 | awk '/^Address: /{{print $2}}' | tail -1); "
                "/udpecho send $ip 5353 ping",
            )
        )
        assert output == "udp:ping"
        isolated = daemon.docker(
            "run",
            "--rm",
            "-v",
            tool,
            "busybox",
            "/udpecho",
            "send",
            _ok(
                daemon.docker(
                    "inspect",
                    "-f",
                    f"{{{{.NetworkSettings.Networks.{network}.IPAddress}}}}",
                    server,
                )
            ),
            "5353",
            "ping",
        )
        assert isolated.returncode != 0  # the default bridge cannot reach the user network
    finally:
        daemon.docker("rm", "-f", server)
        daemon.docker("network", "rm", network)


def test_link_on_the_default_bridge(daemon):
    target = f"linked{uuid.uuid4().hex[:6]}"
    _ok(daemon.docker("run", "-d", "--name", target, "busybox", "httpd", "-f", "-p", "8080"))
    try:
        address = _ok(daemon.docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", target))
        # No DNS by name on the default bridge, as in Docker ...
        unlinked = daemon.docker("run", "--rm", "busybox", "nslookup", target)
        assert unlinked.returncode != 0 or address not in unlinked.stdout.decode()
        # ... but a link puts the name (and the alias) in /etc/hosts.
        hosts = _ok(
            daemon.docker("run", "--rm", "--link", f"{target}:db", "busybox", "cat", "/etc/hosts")
        )
        line = next(line for line in hosts.splitlines() if line.startswith(address))
        assert "db" in line.split() and target in line.split()
        reply = daemon.docker(
            "run",
            "--rm",
            "--link",
            f"{target}:db",
            "busybox",
            "sh",
            "-c",
            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 db 8080 | head -1",
        )
        assert _ok(reply).startswith("HTTP/1.")
    finally:
        daemon.docker("rm", "-f", target)


def test_host_gateway_in_etc_hosts(daemon):
    gateway = _ok(
        daemon.docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "bridge")
    )
    hosts = _ok(
        daemon.docker(
            "run", "--rm", "--add-host", "outside:host-gateway", "busybox", "cat", "/etc/hosts"
        )
    )
    assert f"{gateway}\toutside" in hosts.splitlines()


def _veths() -> set[str]:
    out = subprocess.run(
        ["ip", "-o", "link", "show", "type", "veth"], capture_output=True, text=True
    ).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_a_failed_start_leaves_no_network_behind(daemon):
    before = _veths()
    netns_dir = daemon.exec_root / "netns"
    netns_before = set(netns_dir.iterdir()) if netns_dir.exists() else set()
    failed = daemon.docker("run", "--rm", "-p", "80", "busybox", "no-such-program")
    assert failed.returncode == 127
    assert _veths() == before
    assert (set(netns_dir.iterdir()) if netns_dir.exists() else set()) == netns_before
    ruleset = subprocess.run(
        ["nft", "list", "table", "ip", f"dockyard_{daemon.bridge}"], capture_output=True, text=True
    ).stdout
    # No port mapping left (the table's fixed "ct status dnat accept" rule stays).
    assert not [line for line in ruleset.splitlines() if "dnat" in line and " to " in line]
