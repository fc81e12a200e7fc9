"""Containers under runc (`--runtime runc`) instead of dockyard-runtime: the daemon creates
them through runc's command line (a console socket for a TTY), starts, signals and deletes
them with it, and reads OOM kills from the cgroup runc made."""

from __future__ import annotations

import json
import subprocess


def _runc_containers(daemon) -> list[str]:
    result = subprocess.run(
        ["runc", "--root", str(daemon.exec_root / "runtime" / "runc"), "list", "-f", "json"],
        capture_output=True,
        text=True,
    )
    return [c["id"] for c in json.loads(result.stdout or "null") or []]


def test_output_exit_code_and_tty(daemon):
    result = daemon.docker(
        "run", "--rm", "--runtime", "runc", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\n"
    result = daemon.docker("run", "--rm", "-t", "--runtime", "runc", "busybox", "tty")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == b"/dev/pts/0"
    assert _runc_containers(daemon) == []


def test_stop_exec_and_cleanup(daemon):
    run = daemon.docker(
        "run", "-d", "--name", "under-runc", "--runtime", "runc", "busybox", "sleep", "300"
    )
    assert run.returncode == 0, run.stderr
    container_id = run.stdout.decode().strip()
    try:
        runtime = daemon.docker("inspect", "-f", "{{.HostConfig.Runtime}}", "under-runc")
        assert runtime.stdout.strip() == b"runc"
        assert _runc_containers(daemon) == [container_id]
        exec_result = daemon.docker("exec", "under-runc", "cat", "/proc/1/cmdline")
        assert exec_result.stdout == b"sleep\x00300\x00"
        assert daemon.docker("stop", "-t", "1", "under-runc").returncode == 0
        state = daemon.docker(
            "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "under-runc"
        )
        assert state.stdout.split() == [b"exited", b"137"]  # sleep ignores SIGTERM as pid 1
        assert _runc_containers(daemon) == []  # deleted in runc once it exited
    finally:
        daemon.docker("rm", "-f", "under-runc")


def test_oom_kill_is_recorded(daemon):
    result = daemon.docker(
        "run", "--name", "runc-hog", "--runtime", "runc", "-m", "32m", "--memory-swap", "32m",
        "busybox", "tail", "/dev/zero",
        timeout=120,
    )  # fmt: skip
    try:
        assert result.returncode == 137, result.stderr
        state = daemon.docker("inspect", "-f", "{{.State.OOMKilled}}", "runc-hog")
        assert state.stdout.strip() == b"true"
    finally:
        daemon.docker("rm", "-f", "runc-hog")
