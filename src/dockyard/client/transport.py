"""Where the daemon is and how to open a connection to it (UNIX socket, TCP, TCP+TLS)."""

from __future__ import annotations

import http.client
import os
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_HOST = "unix:///run/dockyard/dockyard.sock"
DEFAULT_TCP_PORT = 2375
DEFAULT_TLS_PORT = 2376


@dataclass(frozen=True)
class Host:
    """A parsed daemon address: `unix` with a path, or `tcp` with host and port."""

    scheme: str
    address: str
    port: int = 0
    tls: ssl.SSLContext | None = None

    def connect(self, timeout: float | None = None) -> socket.socket:
        if self.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(self.address)
            except OSError:
                sock.close()
                raise
            return sock
        sock = socket.create_connection((self.address, self.port), timeout=timeout)
        if self.tls is not None:
            return self.tls.wrap_socket(sock, server_hostname=self.address)
        return sock

    def http(self, timeout: float | None = None) -> http.client.HTTPConnection:
        return _Connection(self, timeout)


class _Connection(http.client.HTTPConnection):
    """http.client over whatever socket the Host opens."""

    def __init__(self, host: Host, timeout: float | None):
        # The Host header is not validated by dockerd; the docker CLI sends this one.
        super().__init__("api.moby.localhost", timeout=timeout)
        self._target = host

    def connect(self) -> None:
        self.sock = self._target.connect(self.timeout)


def configured_host(flag: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The host the user asked for: -H, then DOCKYARD_HOST, then DOCKER_HOST; None if none."""
    environ = os.environ if environ is None else environ
    return flag or environ.get("DOCKYARD_HOST") or environ.get("DOCKER_HOST") or None


def tls_context(environ: dict[str, str] | None = None) -> ssl.SSLContext | None:
    """TLS as the docker CLI sets it up from DOCKER_TLS_VERIFY and DOCKER_CERT_PATH."""
    environ = os.environ if environ is None else environ
    cert_path = environ.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
    verify = environ.get("DOCKER_TLS_VERIFY", "") not in ("", "0")
    if not verify and not environ.get("DOCKER_TLS"):
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca = os.path.join(cert_path, "ca.pem")
    if verify and os.path.exists(ca):
        context.load_verify_locations(ca)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert, key = os.path.join(cert_path, "cert.pem"), os.path.join(cert_path, "key.pem")
    if os.path.exists(cert) and os.path.exists(key):
        context.load_cert_chain(cert, key)
    return context


def parse_host(value: str, tls: ssl.SSLContext | None = None) -> Host:
    """`unix:///path`, `tcp://host:port`, `host:port` or `/path` (as dockerd's -H accepts)."""
    if value.startswith("/"):
        return Host("unix", value)
    if "://" not in value:
        value = "tcp://" + value
    parts = urlsplit(value)
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError(f"invalid host: {value!r}")
        return Host("unix", parts.path)
    if parts.scheme in ("tcp", "http", "https"):
        tls = tls or (ssl.create_default_context() if parts.scheme == "https" else None)
        default_port = DEFAULT_TLS_PORT if tls else DEFAULT_TCP_PORT
        if not parts.hostname:
            raise ValueError(f"invalid host: {value!r}")
        return Host("tcp", parts.hostname, parts.port or default_port, tls)
    raise ValueError(f"invalid host: {value!r}: unsupported scheme {parts.scheme!r}")
