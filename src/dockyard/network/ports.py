"""Published ports: Docker's PortBindings/PublishAllPorts resolved to host ports, each held
by a bound (never listening) socket, so that a second claim on the port, ours or another
program's, fails at start with Docker's message rather than silently losing traffic."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from dockyard.network.errors import AddressInUse, NetworkError


@dataclass
class Binding:
    proto: str
    container_port: int
    host_ip: str
    host_port: int
    holder: socket.socket | None = None


def _port_key(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp", "sctp") or not port.isdigit() or not 0 < int(port) < 65536:
        raise NetworkError(f"invalid port specification: {key!r}")
    if proto == "sctp":
        raise NetworkError("sctp ports cannot be published by this daemon")
    return int(port), proto


def _host_ports(text: str) -> tuple[int, int]:
    """ "" (any), "8080", or "8000-8010"."""
    if not text:
        return 0, 0
    low, _, high = text.partition("-")
    try:
        start, end = int(low), int(high or low)
    except ValueError:
        raise NetworkError(f"invalid hostPort: {text}") from None
    if not (0 < start <= end < 65536):
        raise NetworkError(f"invalid hostPort: {text}")
    return start, end


def requested(host_config: dict, exposed: dict | None) -> list[tuple[str, int, str, str]]:
    """(proto, container port, host IP, host port spec) for each binding asked for."""
    wanted = []
    bindings = dict(host_config.get("PortBindings") or {})
    if host_config.get("PublishAllPorts"):
        for key in exposed or {}:
            bindings.setdefault(key, [{"HostIp": "", "HostPort": ""}])
    for key, entries in sorted(bindings.items()):
        port, proto = _port_key(key)
        for entry in entries or [{"HostIp": "", "HostPort": ""}]:
            host_ip = (entry or {}).get("HostIp") or ""
            if host_ip:
                try:
                    if ipaddress.ip_address(host_ip).version != 4:
                        raise NetworkError(f"IPv6 host addresses are not supported: {host_ip}")
                except ValueError:
                    raise NetworkError(f"invalid IP address: {host_ip}") from None
            wanted.append((proto, port, host_ip, (entry or {}).get("HostPort") or ""))
    return wanted


def from_settings(settings: dict) -> list[tuple[str, int, str, str]]:
    """The bindings NetworkSettings.Ports records, with their host ports as they were."""
    wanted = []
    for key, entries in settings.items():
        port, proto = _port_key(key)
        for entry in entries or []:
            host_ip = "" if entry["HostIp"] == "0.0.0.0" else entry["HostIp"]
            wanted.append((proto, port, host_ip, entry["HostPort"]))
    return wanted


def _hold(proto: str, host_ip: str, port: int) -> socket.socket:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    # No SO_REUSEADDR: with it Linux lets two sockets bind one port while neither listens.
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.bind((host_ip or "0.0.0.0", port))
    except OSError:
        sock.close()
        raise
    return sock


def reserve(wanted: list[tuple[str, int, str, str]]) -> list[Binding]:
    """Hold every host port; a range takes its first free port; "" takes a free one."""
    held: list[Binding] = []
    try:
        for proto, container_port, host_ip, spec in wanted:
            start, end = _host_ports(spec)
            for port in range(start, end + 1):
                try:
                    sock = _hold(proto, host_ip, port)
                    break
                except OSError:
                    if port == end:
                        address = host_ip or "0.0.0.0"
                        shown = spec if start != end else str(port)
                        raise AddressInUse(
                            f"Bind for {address}:{shown} failed: port is already allocated"
                        ) from None
            host_port = sock.getsockname()[1]
            held.append(Binding(proto, container_port, host_ip, host_port, sock))
    except BaseException:
        release(held)
        raise
    return held


def release(bindings: list[Binding]) -> None:
    for binding in bindings:
        if binding.holder is not None:
            binding.holder.close()
            binding.holder = None


def settings(exposed: dict | None, bindings: list[Binding]) -> dict:
    """NetworkSettings.Ports: every exposed port, with its host bindings or null."""
    ports: dict[str, list[dict] | None] = {key: None for key in exposed or {}}
    for b in bindings:
        key = f"{b.container_port}/{b.proto}"
        entry = {"HostIp": b.host_ip or "0.0.0.0", "HostPort": str(b.host_port)}
        ports[key] = [*(ports.get(key) or []), entry]
    return ports
