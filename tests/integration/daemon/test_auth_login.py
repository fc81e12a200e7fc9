"""`docker login` through the daemon against a real local registry with htpasswd auth."""

from __future__ import annotations

import socket
import subprocess
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


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`docker-registry serve` on a free loopback port, htpasswd (bcrypt) auth; host:port."""
    root = tmp_path_factory.mktemp("registry")
    htpasswd = subprocess.run(
        ["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True
    ).stdout
    (root / "htpasswd").write_text(htpasswd)
    address = f"127.0.0.1:{_free_port()}"
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'store'}\n"
        f"http:\n  addr: {address}\n"
        f"auth:\n  htpasswd:\n    realm: dockyard-test\n    path: {root / 'htpasswd'}\n"
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
