"""Bad requests get Docker's 4xx answers and the daemon keeps serving: malformed JSON, wrong
types, missing objects, name conflicts, invalid names, clients that vanish mid-stream, and
concurrent runs."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor


def _request(daemon, method: str, path: str, body: bytes = b"") -> tuple[int, dict | None]:
    """One raw HTTP request over the daemon's socket: (status, decoded JSON body or None)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(daemon.socket))
        head = (
            f"{method} /v1.41{path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    header, _, payload = data.partition(b"\r\n\r\n")
    status = int(header.split()[1])
    if b"chunked" in header.lower():
        payload = _unchunk(payload)
    return status, json.loads(payload) if payload.strip() else None


def _unchunk(payload: bytes) -> bytes:
    out = b""
    while payload:
        size, _, rest = payload.partition(b"\r\n")
        length = int(size, 16)
        if not length:
            break
        out += rest[:length]
        payload = rest[length + 2 :]
    return out


def test_malformed_and_mistyped_bodies(daemon):
    status, body = _request(daemon, "POST", "/containers/create", b'{"Image": "busybox",')
    assert status == 400 and body["message"]
    status, body = _request(daemon, "POST", "/containers/create", b'{"Image":"busybox","Cmd":5}')
    assert status == 400
    assert body["message"].startswith("json: cannot unmarshal number into Go struct field")
    assert "Cmd" in body["message"]
    status, body = _request(
        daemon, "POST", "/containers/create", b'{"Image":"busybox","HostConfig":{"Memory":"x"}}'
    )
    assert status == 400 and "cannot unmarshal string" in body["message"]
    status, body = _request(daemon, "POST", "/containers/create", b"[1, 2]")
    assert status == 400
    assert daemon.ping()


def test_missing_objects_conflicts_and_names(daemon):
    for method, path in (
        ("GET", "/containers/nope/json"),
        ("POST", "/containers/nope/start"),
        ("POST", "/containers/nope/stop"),
        ("POST", "/containers/nope/kill"),
        ("DELETE", "/containers/nope"),
        ("GET", "/containers/nope/logs?stdout=1"),
    ):
        status, body = _request(daemon, method, path)
        assert (status, body) == (404, {"message": "No such container: nope"}), path
    status, body = _request(daemon, "GET", "/no/such/route")
    assert (status, body) == (404, {"message": "page not found"})
    invalid = daemon.docker("create", "--name", "bad/name", "busybox")
    assert invalid.returncode == 1
    assert b"Invalid container name (bad/name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" in (
        invalid.stderr
    )
    assert daemon.docker("create", "--name", "taken", "busybox").returncode == 0
    try:
        status, body = _request(
            daemon, "POST", "/containers/create?name=taken", b'{"Image": "busybox"}'
        )
        assert status == 409 and 'The container name "/taken" is already in use' in body["message"]
        status, body = _request(daemon, "POST", "/containers/taken/stop")
        assert status == 304
        status, body = _request(daemon, "POST", "/containers/taken/kill")
        assert status == 409 and "is not running" in body["message"]
    finally:
        daemon.docker("rm", "-f", "taken")
    assert daemon.ping()


def _open_and_drop(daemon, path: str, method: str = "GET") -> None:
    """Start a streaming request, read its first bytes, then vanish."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(str(daemon.socket))
    sock.sendall(f"{method} /v1.41{path} HTTP/1.1\r\nHost: d\r\n\r\n".encode())
    assert sock.recv(4096).startswith(b"HTTP/1.1 ")
    sock.close()


def test_clients_vanishing_mid_stream(daemon):
    name = "chatty"
    run = daemon.docker(
        "run",
        "-d",
        "-i",
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "while true; do echo line; sleep 0.05; done",
    )
    assert run.returncode == 0, run.stderr
    try:
        for _ in range(3):
            _open_and_drop(daemon, f"/containers/{name}/logs?stdout=1&follow=1")
            _open_and_drop(daemon, "/events")
            _open_and_drop(daemon, f"/containers/{name}/attach?stream=1&stdout=1&stdin=1", "POST")
            _open_and_drop(daemon, f"/containers/{name}/wait", "POST")
        time.sleep(0.5)
        assert daemon.ping()
        assert daemon.docker("inspect", "-f", "{{.State.Running}}", name).stdout == b"true\n"
        logs = daemon.docker("logs", "--tail", "2", name)
        assert logs.stdout == b"line\nline\n"
    finally:
        daemon.docker("rm", "-f", name)


def test_ten_runs_in_parallel(daemon):
    def run(index: int):
        return daemon.docker("run", "--rm", "busybox", "echo", f"run {index}", timeout=120)

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(run, range(10)))
    for index, result in enumerate(results):
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"run {index}\n".encode()
    assert daemon.docker("ps", "-aq").stdout.strip() == b""
    assert daemon.ping()
