"""`docker login` through the daemon against a real local registry with htpasswd auth."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

USER, PASSWORD = "user", "pass"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1)
    except urllib.error.HTTPError:
        return True  # 401: up, asking for credentials
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _serve_registry(root: Path, auth: str) -> Iterator[str]:
    """`docker-registry serve` on a free loopback port with the given auth section."""
    address = f"127.0.0.1:{_free_port()}"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'store'}\n"
        f"http:\n  addr: {address}\n"
        f"auth:\n{auth}"
    )
    with open(root / "registry.log", "wb") as log:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(config)], stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 20
        while not _answers(f"http://{address}/v2/"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"registry did not start: {_tail(root / 'registry.log')}")
            time.sleep(0.05)
        yield address
    finally:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A registry with htpasswd (bcrypt) auth: it answers `Basic realm=...`; host:port."""
    root = tmp_path_factory.mktemp("registry")
    htpasswd = subprocess.run(
        ["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True
    ).stdout
    (root / "htpasswd").write_text(htpasswd)
    auth = f"  htpasswd:\n    realm: dockyard-test\n    path: {root / 'htpasswd'}\n"
    with _serve_registry(root, auth) as address:
        yield address


def _tail(path: Path) -> str:
    return path.read_text()[-2000:]


def test_docker_login_succeeds_and_stores_credentials(daemon, registry):
    result = daemon.docker("login", registry, "-u", USER, "-p", PASSWORD)
    assert result.returncode == 0, result.stderr
    assert b"Login Succeeded" in result.stdout
    config = (daemon.root / "docker-config" / "config.json").read_text()
    assert registry in config
    logout = daemon.docker("logout", registry)
    assert logout.returncode == 0, logout.stderr


def test_docker_login_wrong_password_fails(daemon, registry):
    result = daemon.docker("login", registry, "-u", USER, "-p", "wrong")
    assert result.returncode == 1
    assert (
        f"login attempt to http://{registry}/v2/ failed with status: 401 Unauthorized".encode()
        in result.stderr
    ), result.stderr
    assert daemon.docker("version").returncode == 0


def test_docker_py_login(daemon, registry):
    client = daemon.client()
    try:
        answer = client.login(USER, PASSWORD, registry=registry, reauth=True)
        assert answer == {"IdentityToken": "", "Status": "Login Succeeded"}
        with pytest.raises(docker.errors.APIError) as refused:
            client.login(USER, "wrong", registry=registry, reauth=True)
        assert refused.value.response.status_code == 401
    finally:
        client.close()


def test_unreachable_registry_is_a_clear_error(daemon):
    client = daemon.client()
    try:
        with pytest.raises(docker.errors.APIError) as failed:
            client.login(USER, PASSWORD, registry=f"127.0.0.1:{_free_port()}", reauth=True)
        assert failed.value.response.status_code == 500
        assert "/v2/" in str(failed.value) and "Cannot connect" in str(failed.value)
        assert client.ping()
    finally:
        client.close()


ISSUER, SERVICE, REFRESH = "dockyard-test-issuer", "dockyard-test-registry", "refresh-me"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    """A token realm: basic credentials in, an RS256 JWT the registry trusts out."""

    key: Path
    cert_der: bytes

    def do_GET(self) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self._answer(401, {"details": "incorrect username or password"})
            return
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {"iss": ISSUER, "sub": USER, "aud": SERVICE, "iat": now, "nbf": now - 10}
        claims |= {"exp": now + 300, "jti": str(now), "access": []}
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input.encode(),
            capture_output=True,
            check=True,
        ).stdout
        token = f"{signing_input}.{_b64url(signature)}"
        self._answer(200, {"token": token, "refresh_token": REFRESH})

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A registry with token auth (`Bearer realm=...,service=...`) and its token server."""
    root = tmp_path_factory.mktemp("token-registry")
    key, cert = root / "key.pem", root / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", f"/CN={ISSUER}", "-keyout", str(key), "-out", str(cert)),
        ],
        capture_output=True,
        check=True,
    )
    der = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-outform", "DER"], capture_output=True, check=True
    ).stdout
    handler = type("Handler", (_TokenHandler,), {"key": key, "cert_der": der})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    realm = f"http://127.0.0.1:{server.server_address[1]}/token"
    auth = (
        f"  token:\n    realm: {realm}\n    service: {SERVICE}\n"
        f"    issuer: {ISSUER}\n    rootcertbundle: {cert}\n"
    )
    try:
        with _serve_registry(root, auth) as address:
            yield address
    finally:
        server.shutdown()
        server.server_close()


def test_login_through_a_token_realm(daemon, token_registry):
    client = daemon.client()
    try:
        answer = client.login(USER, PASSWORD, registry=token_registry, reauth=True)
        assert answer == {"IdentityToken": REFRESH, "Status": "Login Succeeded"}
        with pytest.raises(docker.errors.APIError) as refused:
            client.login(USER, "wrong", registry=token_registry, reauth=True)
        assert refused.value.response.status_code == 401
        assert "unauthorized: incorrect username or password" in str(refused.value)
    finally:
        client.close()
    result = daemon.docker("login", token_registry, "-u", USER, "-p", PASSWORD)
    assert result.returncode == 0, result.stderr
    assert b"Login Succeeded" in result.stdout
