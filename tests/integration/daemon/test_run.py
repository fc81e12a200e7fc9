"""The heart of `docker run` through the real docker CLI and docker-py."""

from __future__ import annotations

import time

import docker
import pytest


def test_run_rm_prints_output_and_leaves_nothing(daemon):
    result = daemon.docker("run", "--rm", "busybox", "echo", "hello", "world")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello world\n"
    assert daemon.docker("ps", "-aq").stdout.strip() == b""


def test_exit_codes_follow_docker(daemon):
    assert daemon.docker("run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    missing = daemon.docker("run", "--rm", "busybox", "no-such-program")
    assert missing.returncode == 127
    assert b"executable file not found" in missing.stderr
    assert daemon.docker("run", "--rm", "nosuchimage:1", "true").returncode == 125


def test_stdin_and_environment(daemon):
    result = daemon.docker("run", "--rm", "-i", "busybox", "cat", input=b"piped in\n")
    assert result.stdout == b"piped in\n"
    result = daemon.docker(
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "busybox",
        "sh",
        "-c",
        "echo $FOO; pwd; id -u",
    )
    assert result.stdout.split() == [b"bar", b"/tmp", b"65534"]


def test_detached_logs_stop_rm(daemon):
    name = "ticker"
    started = daemon.docker(
        "run",
        "-d",
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    )
    assert started.returncode == 0, started.stderr
    deadline = time.monotonic() + 10
    while b"tick 3" not in daemon.docker("logs", name).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert b"Up " in daemon.docker("ps").stdout
    tail = daemon.docker("logs", "--tail", "1", name).stdout
    assert tail.count(b"\n") == 1 and tail.startswith(b"tick ")
    assert daemon.docker("stop", "-t", "1", name).returncode == 0
    inspect = daemon.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)
    assert inspect.stdout.strip() == b"exited 137"  # sh ignores SIGTERM as pid 1: killed
    assert daemon.docker("stop", name).returncode == 0  # 304: already stopped is fine
    conflict = daemon.docker("run", "--name", name, "busybox", "true")
    assert conflict.returncode == 125 and b"is already in use" in conflict.stderr
    assert daemon.docker("rm", name).returncode == 0
    missing = daemon.docker("rm", name)
    assert missing.returncode == 1 and b"No such container: ticker" in missing.stderr


def test_docker_py_run_and_wait(daemon):
    client = daemon.client()
    output = client.containers.run(
        "busybox", ["sh", "-c", "echo out; echo err >&2"], remove=True, stderr=True
    )
    assert b"out" in output
    container = client.containers.run("busybox", ["sh", "-c", "exit 4"], detach=True)
    assert container.wait(timeout=30)["StatusCode"] == 4
    container.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("nope")
    with pytest.raises(docker.errors.ImageNotFound):
        client.containers.create("nosuchimage:1", "true")
