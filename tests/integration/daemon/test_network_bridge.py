"""Container networking with real traffic: the default bridge, published ports, user networks
with embedded DNS, isolation, internal networks, an outside namespace, cleanup."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator

import pytest

GET = "printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} {port} | tail -n 1"


def _subnet(daemon, offset: int) -> str:
    """A /24 of 10.200.0.0/16 of this daemon's own (its suffix picks it)."""
    return f"10.200.{(int(daemon.suffix, 16) + offset) % 200 + 20}.0/24"


def _host_address() -> str:
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        name, address = line.split()[1], line.split()[3].split("/")[0]
        if not name.startswith(("dy", "br-", "veth", "docker")):
            return address
    raise AssertionError(f"no host address in {out}")


def _fetch(host: str, port: int | str) -> str:
    result = subprocess.run(
        ["busybox", "sh", "-c", GET.format(host=host, port=port)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return result.stdout.strip()


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


@pytest.fixture
def web(daemon) -> Iterator[str]:
    name = f"web{uuid.uuid4().hex[:6]}"
    _ok(
        daemon.docker(
            "run",
            "-d",
            "--name",
            name,
            "-p",
            "80",
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/etc",
        )
    )
    try:
        yield name
    finally:
        daemon.docker("rm", "-f", name)


def test_default_bridge_settings_and_traffic(daemon, web):
    settings = json.loads(_ok(daemon.docker("inspect", web)))[0]["NetworkSettings"]
    address, gateway = settings["IPAddress"], settings["Gateway"]
    assert address and gateway and settings["IPPrefixLen"] > 0
    assert settings["MacAddress"].startswith("02:42:")
    bridge = settings["Networks"]["bridge"]
    assert bridge["IPAddress"] == address and bridge["Gateway"] == gateway
    network = json.loads(_ok(daemon.docker("network", "inspect", "bridge")))[0]
    assert network["Options"]["com.docker.network.bridge.name"] == daemon.bridge
    assert network["IPAM"]["Config"][0]["Gateway"] == gateway
    assert not network["IPAM"]["Config"][0]["Subnet"].startswith("172.17.")
    hostname = web_hostname(daemon, web)
    assert _fetch(address, 80) == hostname
    # Another container reaches it by address; its /etc/hosts names itself.
    out = _ok(
        daemon.docker("run", "--rm", "busybox", "sh", "-c", GET.format(host=address, port=80))
    )
    assert out == hostname


def web_hostname(daemon, name: str) -> str:
    return _ok(daemon.docker("exec", name, "hostname"))


def test_published_port_from_host_containers_and_itself(daemon, web):
    port = _ok(daemon.docker("port", web, "80/tcp")).split(":")[-1]
    hostname = web_hostname(daemon, web)
    host = _host_address()
    assert _fetch("127.0.0.1", port) == hostname
    assert _fetch(host, port) == hostname
    other = daemon.docker("run", "--rm", "busybox", "sh", "-c", GET.format(host=host, port=port))
    assert _ok(other) == hostname
    hairpin = daemon.docker("exec", web, "sh", "-c", GET.format(host=host, port=port))
    assert _ok(hairpin) == hostname
    ports = json.loads(_ok(daemon.docker("inspect", web)))[0]["NetworkSettings"]["Ports"]
    assert ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": port}]}


def test_port_conflict_is_a_clear_error_and_ranges_and_publish_all(daemon, web):
    port = _ok(daemon.docker("port", web, "80/tcp")).split(":")[-1]
    name = f"clash{uuid.uuid4().hex[:6]}"
    try:
        result = daemon.docker(
            "run", "-d", "--name", name, "-p", f"{port}:80", "busybox", "sleep", "30"
        )
        assert result.returncode == 125
        assert (
            f"Bind for 0.0.0.0:{port} failed: port is already allocated" in result.stderr.decode()
        )
        daemon.docker("rm", "-f", name)
        _ok(
            daemon.docker(
                "run",
                "-d",
                "--name",
                name,
                "-P",
                "--expose",
                "7000",
                "--expose",
                "7001/udp",
                "-p",
                f"127.0.0.1:{port}-{int(port) + 5}:90",
                "busybox",
                "sleep",
                "30",
            )
        )
        lines = sorted(_ok(daemon.docker("port", name)).splitlines())
        assert len(lines) == 3
        assert any(line.startswith("90/tcp -> 127.0.0.1:") for line in lines)
        assert any(line.startswith("7001/udp -> 0.0.0.0:") for line in lines)
    finally:
        daemon.docker("rm", "-f", name)


def test_user_network_dns_aliases_and_isolation(daemon):
    net, srv, tag = (f"{p}{uuid.uuid4().hex[:6]}" for p in ("net", "srv", ""))
    _ok(
        daemon.docker(
            "network", "create", "--subnet", _subnet(daemon, 0), "--label", f"t={tag}", net
        )
    )
    try:
        _ok(
            daemon.docker(
                "run",
                "-d",
                "--name",
                srv,
                "--network",
                net,
                "--network-alias",
                "backend",
                "busybox",
                "httpd",
                "-f",
                "-p",
                "80",
                "-h",
                "/etc",
            )
        )
        hostname = web_hostname(daemon, srv)
        for name in (srv, "backend", hostname):
            out = daemon.docker(
                "run",
                "--rm",
                "--network",
                net,
                "busybox",
                "sh",
                "-c",
                "cat /etc/resolv.conf; " + GET.format(host=name, port=80),
            )
            text = _ok(out)
            assert "nameserver 127.0.0.11" in text and text.endswith(hostname), text
        address = json.loads(_ok(daemon.docker("inspect", srv)))[0]["NetworkSettings"]["Networks"][
            net
        ]["IPAddress"]
        inspect = json.loads(_ok(daemon.docker("network", "inspect", net)))[0]
        assert [c["Name"] for c in inspect["Containers"].values()] == [srv]
        assert inspect["Labels"] == {"t": tag}
        # From the default bridge: no route to the other network's containers.
        out = daemon.docker("run", "--rm", "busybox", "sh", "-c", GET.format(host=address, port=80))
        assert hostname not in out.stdout.decode()
        # docker network rm refuses while it is in use.
        refused = daemon.docker("network", "rm", net)
        assert refused.returncode != 0 and "active endpoints" in refused.stderr.decode()
    finally:
        daemon.docker("rm", "-f", srv)
        daemon.docker("network", "rm", net)
    assert net not in _ok(daemon.docker("network", "ls", "--format", "{{.Name}}"))


def test_connect_disconnect_and_internal_network(daemon):
    net, box = f"int{uuid.uuid4().hex[:6]}", f"box{uuid.uuid4().hex[:6]}"
    _ok(daemon.docker("network", "create", "--internal", "--subnet", _subnet(daemon, 1), net))
    try:
        _ok(daemon.docker("create", "--name", box, "--network", net, "busybox", "sleep", "60"))
        _ok(daemon.docker("network", "disconnect", net, box))
        _ok(daemon.docker("network", "connect", "--alias", "again", net, box))
        _ok(daemon.docker("start", box))
        routes = _ok(daemon.docker("exec", box, "ip", "route"))
        assert "default" not in routes
        out = daemon.docker("exec", box, "sh", "-c", GET.format(host=_host_address(), port=22))
        assert out.stdout.decode().strip() == ""
        _ok(daemon.docker("network", "connect", "bridge", box))
        links = _ok(daemon.docker("exec", box, "ip", "-o", "link"))
        assert "eth1" in links
        _ok(daemon.docker("network", "disconnect", "bridge", box))
        assert "eth1" not in _ok(daemon.docker("exec", box, "ip", "-o", "link"))
    finally:
        daemon.docker("rm", "-f", box)
        daemon.docker("network", "rm", net)


def test_outside_namespace_reaches_published_port(daemon, web):
    port = _ok(daemon.docker("port", web, "80/tcp")).split(":")[-1]
    tag = uuid.uuid4().hex[:6]
    ns, host_end, ns_end = f"dyout{tag}", f"vo{tag}", f"vi{tag}"
    base = _subnet(daemon, 2).rsplit(".", 1)[0]
    try:
        for command in (
            ["ip", "netns", "add", ns],
            ["ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end],
            ["ip", "link", "set", ns_end, "netns", ns],
            ["ip", "addr", "add", f"{base}.1/24", "dev", host_end],
            ["ip", "link", "set", host_end, "up"],
            ["ip", "-n", ns, "addr", "add", f"{base}.2/24", "dev", ns_end],
            ["ip", "-n", ns, "link", "set", ns_end, "up"],
            ["ip", "-n", ns, "link", "set", "lo", "up"],
        ):
            subprocess.run(command, check=True, capture_output=True)
        out = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                "busybox",
                "sh",
                "-c",
                GET.format(host=f"{base}.1", port=port),
            ],
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert out.stdout.strip() == web_hostname(daemon, web)
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_cleanup_after_rm_and_daemon_kill(fresh_daemon):
    d = fresh_daemon
    name = f"keep{uuid.uuid4().hex[:6]}"
    _ok(
        d.docker(
            "run",
            "-d",
            "--name",
            name,
            "-p",
            "80",
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/etc",
        )
    )
    port = _ok(d.docker("port", name, "80/tcp")).split(":")[-1]
    hostname = web_hostname(d, name)
    d.kill9()
    assert _fetch("127.0.0.1", port) == hostname  # it keeps serving while the daemon is down
    d.start()
    assert _fetch("127.0.0.1", port) == hostname
    clash = d.docker("run", "--rm", "-p", f"{port}:80", "busybox", "true")
    assert "port is already allocated" in clash.stderr.decode()
    _ok(d.docker("rm", "-f", name))
    assert list((d.exec_root / "netns").iterdir()) == []
    veths = subprocess.run(
        ["ip", "-o", "link", "show", "master", d.bridge], capture_output=True, text=True
    ).stdout
    assert veths.strip() == ""
    table = f"dockyard_{d.bridge}"
    rules = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True)
    assert "dnat to" not in rules.stdout
    d.stop()
    assert subprocess.run(["ip", "link", "show", d.bridge], capture_output=True).returncode != 0
    assert (
        subprocess.run(["nft", "list", "table", "ip", table], capture_output=True).returncode != 0
    )
