"""dockerd's daemon flags, end to end: each test starts a daemon of its own with the flag and
checks what a Docker user sees (docker info, network inspect, runc's state, the files the
daemon writes), as with dockerd."""

from __future__ import annotations

import grp
import ipaddress
import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from conftest import Daemon, running_daemon

RUNC = "/usr/sbin/runc"


def _info(daemon: Daemon, template: str) -> str:
    result = daemon.docker("info", "--format", template)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def _inspect(daemon: Daemon, kind: str, name: str, template: str) -> str:
    result = daemon.docker(kind, "inspect", "--format", template, name)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def _wait_for(probe: Callable[[], str], expected: str, timeout: float = 10) -> str:
    """Poll `probe` until it returns `expected` (or the deadline); return the last value."""
    deadline = time.monotonic() + timeout
    value = probe()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        value = probe()
    return value


def _config_file(daemon: Daemon, **keys: object) -> None:
    """Rewrite the daemon's --config-file, keeping the cgroup parent conftest gave it."""
    path = daemon.root / "daemon.json"
    data = json.loads(path.read_text())
    data.update({key.replace("_", "-"): value for key, value in keys.items()})
    path.write_text(json.dumps(data))


# -- --pidfile ------------------------------------------------------------------------------


def test_pidfile_holds_pid_and_is_removed_on_sigterm(tmp_path: Path) -> None:
    pidfile = tmp_path / "not-yet" / "dockyard.pid"  # dockerd makes the directory too
    with running_daemon(["--pidfile", str(pidfile)]) as d:
        assert pidfile.is_file()
        assert int(pidfile.read_text().strip()) == d.process.pid
        d.stop(signal.SIGTERM)
        assert d.process.returncode == 0, d.log.read_text()[-2000:]
        assert not pidfile.exists()


# -- debug mode -----------------------------------------------------------------------------


def test_debug_mode_reported_by_info(daemon: Daemon) -> None:
    """`-D`/`--debug` is dockerd's debug mode (docker info "Debug Mode: true"); the
    default daemon is not in debug mode."""
    assert _info(daemon, "{{.Debug}}") == "false"
    with running_daemon(["--debug"]) as d:
        assert _info(d, "{{.Debug}}") == "true"


def test_log_level_debug_logs_debug_messages(daemon: Daemon) -> None:
    """`--log-level debug` is accepted and the daemon logs at debug level, which the
    default (info) daemon does not."""
    with running_daemon(["--log-level", "debug"]) as d:
        assert d.docker("run", "--rm", "busybox", "true").returncode == 0
        assert " DEBUG " in d.log.read_text()
    assert " DEBUG " not in daemon.log.read_text()


# -- SIGHUP reload of the --config-file -----------------------------------------------------


def test_sighup_reloads_live_restore_from_config_file() -> None:
    """dockerd reloads the file given with --config-file on SIGHUP (live-restore is one of
    its reloadable keys) and keeps serving."""
    with running_daemon([]) as d:
        assert _info(d, "{{.LiveRestoreEnabled}}") == "false"
        _config_file(d, live_restore=True)
        d.process.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: _info(d, "{{.LiveRestoreEnabled}}"), "true") == "true"
        _config_file(d, live_restore=False)
        d.process.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: _info(d, "{{.LiveRestoreEnabled}}"), "false") == "false"
        assert d.process.poll() is None
        run = d.docker("run", "--rm", "busybox", "echo", "still serving")
        assert (run.returncode, run.stdout) == (0, b"still serving\n"), run.stderr


def test_sighup_reloads_debug_from_config_file() -> None:
    """`"debug": true` in the --config-file then SIGHUP turns debug mode on (dockerd's
    documented way to get debug logs from a running daemon), `false` turns it off."""
    with running_daemon([]) as d:
        assert _info(d, "{{.Debug}}") == "false"
        _config_file(d, debug=True)
        d.process.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: _info(d, "{{.Debug}}"), "true") == "true"
        _config_file(d, debug=False)
        d.process.send_signal(signal.SIGHUP)
        assert _wait_for(lambda: _info(d, "{{.Debug}}"), "false") == "false"
        assert d.process.poll() is None
        run = d.docker("run", "--rm", "busybox", "echo", "still serving")
        assert (run.returncode, run.stdout) == (0, b"still serving\n"), run.stderr


# -- networking: --bip and --default-address-pool -------------------------------------------

BIP = "10.251.7.1/24"
POOL = ipaddress.ip_network("10.252.0.0/16")


def _host_routes() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    routes = []
    for line in out.splitlines():
        first = line.split()[0]
        if first != "default":
            routes.append(ipaddress.ip_network(first, strict=False))
    return routes


def test_bip_sets_default_bridge_subnet_and_gateway() -> None:
    bip = ipaddress.ip_interface(BIP)
    assert not any(r.overlaps(bip.network) for r in _host_routes()), "subnet in use on host"
    with running_daemon(["--bip", BIP]) as d:
        ipam = json.loads(_inspect(d, "network", "bridge", "{{json .IPAM.Config}}"))
        assert ipam == [{"Subnet": "10.251.7.0/24", "Gateway": "10.251.7.1"}]
        addresses = subprocess.run(
            ["ip", "-4", "-o", "addr", "show", "dev", d.bridge], capture_output=True, text=True
        ).stdout
        assert " 10.251.7.1/24 " in addresses
        run = d.docker("run", "-d", "--name", "on-bip", "busybox", "sleep", "300")
        assert run.returncode == 0, run.stderr
        try:
            ip = _inspect(d, "container", "on-bip", "{{.NetworkSettings.IPAddress}}")
            assert ipaddress.ip_address(ip) in bip.network
            assert ip != "10.251.7.1"
            gateway = _inspect(d, "container", "on-bip", "{{.NetworkSettings.Gateway}}")
            assert gateway == "10.251.7.1"
            inside = d.docker("exec", "on-bip", "ip", "-4", "-o", "addr", "show", "eth0")
            assert f" {ip}/24 " in inside.stdout.decode(), inside
        finally:
            d.docker("rm", "-f", "on-bip")


def test_default_address_pool_gives_networks_a_subnet_from_the_pool() -> None:
    assert not any(r.overlaps(POOL) for r in _host_routes()), "pool in use on host"
    with running_daemon(["--default-address-pool", f"base={POOL},size=24"]) as d:
        created = d.docker("network", "create", "pooled")
        assert created.returncode == 0, created.stderr
        try:
            ipam = json.loads(_inspect(d, "network", "pooled", "{{json .IPAM.Config}}"))
            assert len(ipam) == 1
            subnet = ipaddress.ip_network(ipam[0]["Subnet"])
            assert subnet.prefixlen == 24 and subnet.subnet_of(POOL), subnet
            assert ipaddress.ip_address(ipam[0]["Gateway"]) in subnet
            # The default bridge draws from the same pool and does not overlap.
            bridge = json.loads(_inspect(d, "network", "bridge", "{{json .IPAM.Config}}"))
            bridge_subnet = ipaddress.ip_network(bridge[0]["Subnet"])
            assert bridge_subnet.subnet_of(POOL)
            assert not bridge_subnet.overlaps(subnet)
        finally:
            d.docker("network", "rm", "pooled")


# -- --storage-driver vfs -------------------------------------------------------------------


def _overlay_mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        fields = [line.split(" - ", 1) for line in f]
    return [
        head.split()[4]
        for head, tail in fields
        if tail.startswith("overlay ") and head.split()[4].startswith(str(root))
    ]


def test_storage_driver_vfs() -> None:
    with running_daemon(["--storage-driver", "vfs"]) as d:
        assert _info(d, "{{.Driver}}") == "vfs"
        run = d.docker(
            "run", "-d", "--name", "on-vfs", "busybox", "sh", "-c",
            "test -x /bin/busybox && echo written > /created.txt && sleep 300",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        try:
            content = _wait_for(
                lambda: d.docker("exec", "on-vfs", "cat", "/created.txt").stdout.decode(),
                "written\n",
            )
            assert content == "written\n"
            assert _overlay_mounts_under(d.root) == []  # vfs copies, it mounts no overlay
            diff = d.docker("diff", "on-vfs")
            assert diff.returncode == 0, diff.stderr
            assert "A /created.txt" in diff.stdout.decode().splitlines()
        finally:
            d.docker("rm", "-f", "on-vfs")


# -- --add-runtime / --default-runtime ------------------------------------------------------


def _runc_ids(daemon: Daemon, state_dir: str) -> list[str]:
    result = subprocess.run(
        [RUNC, "--root", str(daemon.exec_root / "runtime" / state_dir), "list", "-f", "json"],
        capture_output=True,
        text=True,
    )
    return [c["id"] for c in json.loads(result.stdout or "null") or []]


def test_add_runtime_and_default_runtime() -> None:
    assert os.access(RUNC, os.X_OK)
    with running_daemon(["--add-runtime", f"myrunc={RUNC}", "--default-runtime", "myrunc"]) as d:
        runtimes = json.loads(_info(d, "{{json .Runtimes}}"))
        assert runtimes["myrunc"]["path"] == RUNC
        assert _info(d, "{{.DefaultRuntime}}") == "myrunc"

        run = d.docker("run", "-d", "--name", "by-default", "busybox", "sleep", "300")
        assert run.returncode == 0, run.stderr
        container_id = run.stdout.decode().strip()
        try:
            # State dir: <exec root>/runtime/<basename of the runtime's path> (config.py).
            assert _runc_ids(d, "runc") == [container_id]
            recorded = _inspect(d, "container", "by-default", "{{.HostConfig.Runtime}}")
        finally:
            d.docker("rm", "-f", "by-default")
        assert _runc_ids(d, "runc") == []

        bad = d.docker("run", "--rm", "--runtime", "nosuch", "busybox", "true")
        assert bad.returncode == 125
        assert b"Unknown runtime specified nosuch" in bad.stderr
        # dockerd records the default runtime's name on a container that named none.
        assert recorded == "myrunc"


# -- the API socket -------------------------------------------------------------------------


def test_api_socket_mode_owner_and_group(daemon: Daemon) -> None:
    """As dockerd's /var/run/docker.sock: srw-rw---- root:<socket group>."""
    info = os.stat(daemon.socket)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o660
    assert info.st_uid == 0
    assert grp.getgrgid(info.st_gid).gr_name == "dockyard"


# -- --default-ipc-mode -----------------------------------------------------------------------


def test_default_ipc_mode_shareable_lets_others_join() -> None:
    """dockerd's --default-ipc-mode: containers that name no IPC mode get the daemon's."""
    with running_daemon(["--default-ipc-mode", "shareable"]) as d:
        run = d.docker("run", "-d", "--name", "ipc-donor", "busybox", "sleep", "300")
        assert run.returncode == 0, run.stderr
        try:
            mode = d.docker("inspect", "-f", "{{.HostConfig.IpcMode}}", "ipc-donor")
            assert mode.stdout.strip() == b"shareable"
            assert d.docker("exec", "ipc-donor", "touch", "/dev/shm/note").returncode == 0
            joined = d.docker(
                "run", "--rm", "--ipc", "container:ipc-donor", "busybox", "ls", "/dev/shm"
            )
            assert (joined.returncode, joined.stdout) == (0, b"note\n"), joined.stderr
        finally:
            d.docker("rm", "-f", "ipc-donor")
