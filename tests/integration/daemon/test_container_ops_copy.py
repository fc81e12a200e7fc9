"""`docker cp` both ways (files and directories, running and stopped containers) and the
archive endpoints' answers, through the real docker CLI and docker-py."""

from __future__ import annotations

import base64
import io
import json
import tarfile

import pytest


@pytest.fixture
def running(daemon):
    result = daemon.docker("run", "-d", "--name", "cp-running", "busybox", "sleep", "300")
    assert result.returncode == 0, result.stderr
    yield "cp-running"
    daemon.docker("rm", "-f", "cp-running")


def test_copy_file_and_directory_out(daemon, running, tmp_path):
    assert (
        daemon.docker("exec", running, "sh", "-c", "mkdir -p /d/sub; echo x > /d/sub/f").returncode
        == 0
    )
    result = daemon.docker("cp", f"{running}:/etc/passwd", str(tmp_path / "passwd"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "passwd").read_text().startswith("root:")
    result = daemon.docker("cp", f"{running}:/d", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "d" / "sub" / "f").read_text() == "x\n"
    missing = daemon.docker("cp", f"{running}:/nope", str(tmp_path / "nope"))
    assert missing.returncode == 1
    assert b"Could not find the file /nope in container cp-running" in missing.stderr


def test_copy_file_and_directory_in(daemon, running, tmp_path):
    (tmp_path / "hello.txt").write_text("hello\n")
    (tmp_path / "tree" / "inner").mkdir(parents=True)
    (tmp_path / "tree" / "inner" / "g").write_text("g\n")
    assert daemon.docker("cp", str(tmp_path / "hello.txt"), f"{running}:/tmp/").returncode == 0
    assert daemon.docker("cp", str(tmp_path / "hello.txt"), f"{running}:/renamed").returncode == 0
    result = daemon.docker("cp", str(tmp_path / "tree"), f"{running}:/tmp/tree")
    assert result.returncode == 0, result.stderr
    out = daemon.docker(
        "exec", running, "cat", "/tmp/hello.txt", "/renamed", "/tmp/tree/inner/g"
    ).stdout
    assert out == b"hello\nhello\ng\n"


def test_copy_into_a_stopped_container(daemon, tmp_path):
    daemon.docker("create", "--name", "cp-stopped", "busybox", "cat", "/tmp/in.txt")
    try:
        (tmp_path / "in.txt").write_text("from the host\n")
        result = daemon.docker("cp", str(tmp_path / "in.txt"), "cp-stopped:/tmp/in.txt")
        assert result.returncode == 0, result.stderr
        assert daemon.docker("start", "-a", "cp-stopped").stdout == b"from the host\n"
        result = daemon.docker("cp", "cp-stopped:/tmp/in.txt", str(tmp_path / "back.txt"))
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "back.txt").read_text() == "from the host\n"
    finally:
        daemon.docker("rm", "-f", "cp-stopped")


def test_symlinks_cannot_escape_the_rootfs(daemon, running, tmp_path):
    daemon.docker("exec", running, "ln", "-s", "/", "/tmp/up")
    daemon.docker("exec", running, "ln", "-s", "../../../../../../../etc", "/tmp/dots")
    (tmp_path / "marker").write_text("inside\n")
    assert daemon.docker("cp", str(tmp_path / "marker"), f"{running}:/tmp/dots/").returncode == 0
    # The link resolved inside the container: its /etc got the file, the host's did not.
    assert daemon.docker("exec", running, "cat", "/etc/marker").stdout == b"inside\n"
    daemon.docker("exec", running, "sh", "-c", "echo mine > /tmp/only-here")
    result = daemon.docker("cp", f"{running}:/tmp/up/tmp/only-here", str(tmp_path / "h"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "h").read_text() == "mine\n"


def test_archive_api_shapes(daemon, running):
    client = daemon.client()
    try:
        api = client.api
        stat = api.get_archive(running, "/etc/hostname")[1]
        assert stat["name"] == "hostname" and stat["linkTarget"] == ""
        assert stat["mode"] & (1 << 31) == 0
        directory = api.get_archive(running, "/etc")[1]
        assert directory["mode"] & (1 << 31) and directory["mode"] & 0o777 == 0o755
        url = api._url("/containers/{0}/archive", running)
        response = api.head(url, params={"path": "/bin/sh"})
        header = json.loads(base64.b64decode(response.headers["X-Docker-Container-Path-Stat"]))
        assert header["mode"] & (1 << 27)  # a symlink (to busybox)
        assert header["linkTarget"] == "/bin/busybox"
        # A file where the container has a directory.
        response = api.put(
            url, params={"path": "/", "noOverwriteDirNonDir": "true"}, data=_tar_with_file("etc")
        )
        assert response.status_code == 400
        assert "cannot overwrite directory" in response.json()["message"]
        missing = api.head(url, params={"path": "/nope"})
        assert missing.status_code == 404
    finally:
        client.close()


def _tar_with_file(name: str) -> bytes:
    """A tar whose entry `name` is a regular file."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    return data.getvalue()


def test_a_running_container_is_copied_as_it_sees_itself(daemon, tmp_path):
    """Volumes, binds and the /etc files dockyard mounts are part of what docker cp sees."""
    bind = tmp_path / "bind"
    bind.mkdir()
    (bind / "from-bind").write_text("bound\n")
    result = daemon.docker(
        "run", "-d", "--name", "cp-mounts", "--read-only", "--hostname", "cp-host",
        "-v", "cp-volume:/data", "-v", f"{bind}:/bound:ro",
        "busybox", "sleep", "300",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    try:
        (tmp_path / "in.txt").write_text("into the volume\n")
        result = daemon.docker("cp", str(tmp_path / "in.txt"), "cp-mounts:/data/in.txt")
        assert result.returncode == 0, result.stderr  # a volume stays writable under --read-only
        out = daemon.docker("exec", "cp-mounts", "cat", "/data/in.txt").stdout
        assert out == b"into the volume\n"
        result = daemon.docker("cp", "cp-mounts:/bound/from-bind", str(tmp_path / "out"))
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "out").read_text() == "bound\n"
        result = daemon.docker("cp", "cp-mounts:/etc/hostname", str(tmp_path / "hostname"))
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "hostname").read_text() == "cp-host\n"
        refused = daemon.docker("cp", str(tmp_path / "in.txt"), "cp-mounts:/bound/")
        assert refused.returncode == 1
        assert b"mounted volume is marked read-only" in refused.stderr
        refused = daemon.docker("cp", str(tmp_path / "in.txt"), "cp-mounts:/tmp/")
        assert refused.returncode == 1
        assert b"container rootfs is marked read-only" in refused.stderr
    finally:
        daemon.docker("rm", "-f", "-v", "cp-mounts")
        daemon.docker("volume", "rm", "cp-volume")
