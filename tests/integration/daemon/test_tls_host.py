"""The daemon on TCP with TLS (-H tcp://... --tlsverify): the docker CLI with client
certificates manages containers, a hijacked attach works over TLS, and a client without a
certificate is refused."""

from __future__ import annotations

import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from conftest import running_daemon


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _certificates(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as Docker names them."""
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=ca",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        cwd=directory,
    )
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    (directory / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, extension in (("server", "server.ext"), ("client", "client.ext")):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            f"{name}-key.pem",
            "-out",
            f"{name}.csr",
            cwd=directory,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            extension,
            "-out",
            f"{name}.pem",
            cwd=directory,
        )
    client = directory / "client"
    client.mkdir()
    for source, target in (
        ("ca.pem", "ca.pem"),
        ("client.pem", "cert.pem"),
        ("client-key.pem", "key.pem"),
    ):
        (client / target).write_bytes((directory / source).read_bytes())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory):
    certs = tmp_path_factory.mktemp("certs")
    _certificates(certs)
    port = _free_port()
    with running_daemon(
        [
            "-H",
            f"tcp://127.0.0.1:{port}",
            "--tlsverify",
            "--tlscacert",
            str(certs / "ca.pem"),
            "--tlscert",
            str(certs / "server.pem"),
            "--tlskey",
            str(certs / "server-key.pem"),
        ]
    ) as daemon:
        env = {k: v for k, v in daemon.env.items() if not k.startswith(("DOCKER_", "DOCKYARD_"))}
        env.update(
            DOCKER_HOST=f"tcp://127.0.0.1:{port}",
            DOCKER_TLS_VERIFY="1",
            DOCKER_CERT_PATH=str(certs / "client"),
            DOCKER_CONFIG=str(daemon.root / "docker-config"),
        )
        yield daemon, env


def _docker(env: dict, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], env=env, input=input, capture_output=True, timeout=60)


def test_containers_over_tls(tls_daemon):
    _, env = tls_daemon
    started = _docker(
        env, "run", "-d", "--name", "tls-box", "busybox", "sh", "-c", "echo over tls; exit 3"
    )
    assert started.returncode == 0, started.stderr
    try:
        assert _docker(env, "wait", "tls-box").stdout.strip() == b"3"
        assert _docker(env, "logs", "tls-box").stdout == b"over tls\n"
    finally:
        _docker(env, "rm", "-f", "tls-box")


def test_hijacked_attach_over_tls(tls_daemon):
    """The 101 upgrade and the raw stream work on a TLS connection (stdin in, frames out)."""
    _, env = tls_daemon
    created = _docker(env, "create", "-i", "busybox", "sh", "-c", "read line; echo got $line")
    assert created.returncode == 0, created.stderr
    container = created.stdout.decode().strip()
    certs = Path(env["DOCKER_CERT_PATH"])
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    context.load_cert_chain(str(certs / "cert.pem"), str(certs / "key.pem"))
    host, port = env["DOCKER_HOST"].removeprefix("tcp://").split(":")
    with context.wrap_socket(
        socket.create_connection((host, int(port)), timeout=30), server_hostname=host
    ) as connection:
        connection.sendall(
            f"POST /v1.41/containers/{container}/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\n"
            "Host: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += connection.recv(4096)
        assert head.startswith(b"HTTP/1.1 101 UPGRADED")
        assert _docker(env, "start", container).returncode == 0
        connection.sendall(b"hello\n")
        output = head.partition(b"\r\n\r\n")[2]
        while b"got hello" not in output:
            chunk = connection.recv(4096)
            assert chunk, output
            output += chunk
        assert output.startswith(b"\x01\x00\x00\x00")  # a stdout frame
    _docker(env, "rm", "-f", container)


def test_a_client_without_a_certificate_is_refused(tls_daemon):
    _, env = tls_daemon
    anonymous = {k: v for k, v in env.items() if k not in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")}
    result = _docker(anonymous, "version", "--format", "{{.Server.Version}}")
    assert result.returncode != 0
