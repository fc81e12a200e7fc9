"""`dockyard network ...` and `dockyard port` next to the docker CLI on the same daemon."""

from __future__ import annotations

import json
import subprocess

import pytest


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def _same(daemon, *args: str) -> str:
    """Both CLIs give the same output and exit status; the output."""
    ours, theirs = daemon.dockyard(*args), daemon.docker(*args)
    assert (ours.returncode, ours.stdout.decode()) == (theirs.returncode, theirs.stdout.decode())
    assert ours.stderr.decode().replace("dockyard", "docker") == theirs.stderr.decode()
    return ours.stdout.decode()


@pytest.fixture
def networks(daemon):
    created = ["clinet1", "clinet10", "clinet2"]
    yield created
    daemon.docker("rm", "-f", "clibox")
    for name in created:
        daemon.docker("network", "rm", name)


def test_create_ls_inspect_rm(daemon, networks):
    out = _ok(
        daemon.dockyard(
            "network", "create", "--subnet", "10.217.0.0/24", "--gateway", "10.217.0.254",
            "--ip-range", "10.217.0.128/25", "--aux-address", "printer=10.217.0.5",
            "--label", "team=blue", "-o", "com.docker.network.driver.mtu=1400", "clinet1",
        )
    )  # fmt: skip
    network_id = out.strip()
    assert len(network_id) == 64 and int(network_id, 16) >= 0
    made = json.loads(_ok(daemon.docker("network", "inspect", "clinet1")))[0]
    assert made["Id"] == network_id and made["Labels"] == {"team": "blue"}
    assert made["IPAM"]["Config"] == [
        {
            "Subnet": "10.217.0.0/24",
            "IPRange": "10.217.0.128/25",
            "Gateway": "10.217.0.254",
            "AuxiliaryAddresses": {"printer": "10.217.0.5"},
        }
    ]
    assert made["Options"] == {"com.docker.network.driver.mtu": "1400"}
    _ok(daemon.dockyard("network", "create", "--internal", "clinet10"))
    _ok(daemon.docker("network", "create", "clinet2"))
    taken = _same(daemon, "network", "create", "clinet2")
    assert taken == ""

    listing = _same(daemon, "network", "ls")
    assert listing.splitlines()[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    names = [line.split()[1] for line in listing.splitlines()[1:]]
    assert names == ["bridge", "clinet1", "clinet2", "clinet10", "host", "none"]
    _same(daemon, "network", "ls", "--no-trunc")
    _same(daemon, "network", "ls", "-q", "--filter", "name=clinet")
    _same(daemon, "network", "ls", "--format", "{{.Name}} {{.Internal}} {{.Labels}}")
    _same(daemon, "network", "ls", "--format", 'table {{.Name}}\t{{.IPv6}}\t{{.Label "team"}}')
    _same(daemon, "network", "ls", "-f", "label=team=blue", "--format", "json")

    _same(daemon, "network", "inspect", "clinet1", "bridge")
    _same(daemon, "network", "inspect", "-f", "{{.Name}} {{.Internal}}", "clinet10")
    _same(daemon, "network", "inspect", "clinet1", "nosuchnet")
    _same(daemon, "inspect", "clinet2")
    _same(daemon, "inspect", "--type", "network", "-f", "{{.Driver}}", "none")

    ours = daemon.dockyard("network", "rm", "clinet1", "nosuchnet")
    theirs = daemon.docker("network", "rm", "nosuchnet")
    assert (ours.returncode, ours.stdout, ours.stderr) == (1, b"clinet1\n", theirs.stderr)
    assert theirs.returncode == 1 and b"nosuchnet not found" in theirs.stderr
    assert _same(daemon, "network", "rm", "-f", "nosuchnet") == ""
    _same(daemon, "network", "rm", "bridge")


def test_connect_disconnect_prune_and_port(daemon, networks):
    _ok(daemon.dockyard("network", "create", "--subnet", "10.218.0.0/24", "clinet1"))
    _ok(
        daemon.docker(
            "run", "-d", "--name", "clibox", "-p", "127.0.0.1::80", "-p", "8443:443/udp",
            "busybox", "sleep", "60",
        )
    )  # fmt: skip
    assert _ok(daemon.dockyard("network", "connect", "--alias", "db", "--alias", "store",
                               "--ip", "10.218.0.9", "clinet1", "clibox")) == ""  # fmt: skip
    joined = json.loads(_ok(daemon.docker("inspect", "clibox")))[0]["NetworkSettings"]["Networks"]
    assert joined["clinet1"]["IPAddress"] == "10.218.0.9"
    assert {"db", "store"} <= set(joined["clinet1"]["Aliases"])
    assert "10.218.0.9" in _ok(daemon.docker("exec", "clibox", "ip", "-4", "addr"))
    again = _same(daemon, "network", "connect", "clinet1", "clibox")
    assert again == ""
    _ok(daemon.dockyard("network", "disconnect", "clinet1", "clibox"))
    left = json.loads(_ok(daemon.docker("inspect", "clibox")))[0]["NetworkSettings"]["Networks"]
    assert list(left) == ["bridge"]
    _same(daemon, "network", "disconnect", "clinet1", "clibox")

    _same(daemon, "port", "clibox")
    _same(daemon, "port", "clibox", "80")
    _same(daemon, "port", "clibox", "443/udp")
    _same(daemon, "port", "clibox", "443")
    _same(daemon, "container", "port", "clibox")

    _ok(daemon.docker("network", "create", "clinet2"))
    _ok(daemon.docker("network", "connect", "clinet2", "clibox"))
    pruned = _ok(daemon.dockyard("network", "prune", "-f"))
    assert pruned == "Deleted Networks:\nclinet1\n\n"
    assert _ok(daemon.dockyard("network", "prune", "-f")) == ""
    kept = _ok(daemon.docker("network", "ls", "--format", "{{.Name}}")).split()
    assert "clinet2" in kept and "clinet1" not in kept
    declined = daemon.dockyard("network", "prune", input=b"n\n")
    assert _ok(declined) == (
        "WARNING! This will remove all custom networks not used by at least one container.\n"
        "Are you sure you want to continue? [y/N] "
    )
