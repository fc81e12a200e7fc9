"""pause/unpause, rename, update, top, diff, stats and prune through the real docker CLI."""

from __future__ import annotations

import json
import time

from conftest import CGROUP_ROOT

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done"


def _count(daemon, name: str) -> int:
    return int(daemon.docker("exec", name, "cat", "/tmp/count").stdout or b"0")


def _run(daemon, name: str, *args: str) -> str:
    result = daemon.docker("run", "-d", "--name", name, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def test_pause_stops_the_counter_and_unpause_resumes_it(daemon):
    container_id = _run(daemon, "ops-counter", "busybox", "sh", "-c", COUNTER)
    try:
        time.sleep(0.3)
        assert daemon.docker("pause", "ops-counter").returncode == 0
        inspect = json.loads(daemon.docker("inspect", "ops-counter").stdout)[0]
        assert inspect["State"]["Status"] == "paused" and inspect["State"]["Paused"]
        second = daemon.docker("pause", "ops-counter")
        assert b"is already paused" in second.stderr
        # Read from the host: an exec into a frozen container is refused.
        counter = daemon.data_root / "containers" / container_id / "rootfs" / "tmp" / "count"
        before = counter.read_text()
        time.sleep(0.3)
        assert counter.read_text() == before
        assert daemon.docker("unpause", "ops-counter").returncode == 0
        first = _count(daemon, "ops-counter")
        time.sleep(0.3)
        assert _count(daemon, "ops-counter") > first
        not_paused = daemon.docker("unpause", "ops-counter")
        assert not_paused.returncode == 1 and b"is not paused" in not_paused.stderr
    finally:
        daemon.docker("rm", "-f", "ops-counter")


def test_rename(daemon):
    daemon.docker("create", "--name", "ops-old", "busybox", "true")
    daemon.docker("create", "--name", "ops-taken", "busybox", "true")
    try:
        assert daemon.docker("rename", "ops-old", "ops-new").returncode == 0
        names = daemon.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
        assert b"ops-new" in names and b"ops-old" not in names
        clash = daemon.docker("rename", "ops-new", "ops-taken")
        assert clash.returncode == 1 and b"is already in use" in clash.stderr
    finally:
        daemon.docker("rm", "-f", "ops-new", "ops-old", "ops-taken")


def test_update_memory_of_a_running_container(daemon):
    container_id = _run(daemon, "ops-update", "-m", "64m", "busybox", "sleep", "60")
    try:
        result = daemon.docker(
            "update",
            "-m",
            "96m",
            "--memory-swap",
            "192m",
            "--restart",
            "on-failure:2",
            "ops-update",
        )
        assert result.returncode == 0, result.stderr
        limit = CGROUP_ROOT / "memory" / daemon.cgroup_parent / container_id
        assert int((limit / "memory.limit_in_bytes").read_text()) == 96 * 1024 * 1024
        host_config = json.loads(daemon.docker("inspect", "ops-update").stdout)[0]["HostConfig"]
        assert host_config["Memory"] == 96 * 1024 * 1024
        assert host_config["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
        too_small = daemon.docker("update", "-m", "1m", "ops-update")
        assert too_small.returncode == 1 and b"Minimum memory limit" in too_small.stderr
    finally:
        daemon.docker("rm", "-f", "ops-update")


def test_top_lists_the_container_processes(daemon):
    _run(daemon, "ops-top", "busybox", "sh", "-c", "sleep 61 & sleep 62")
    try:
        result = daemon.docker("top", "ops-top")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.decode().splitlines()
        assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
        commands = " ".join(lines[1:])
        assert "sleep 61" in commands and "sleep 62" in commands
        assert len(lines) == 3  # the two sleeps (sh execs the last), nothing of the host
        custom = daemon.docker("top", "ops-top", "-o", "pid,comm")
        assert custom.stdout.decode().split()[:2] == ["PID", "COMMAND"]
    finally:
        daemon.docker("rm", "-f", "ops-top")
    stopped = daemon.docker("top", "ops-top")
    assert stopped.returncode == 1


def test_diff_shows_changes(daemon):
    _run(daemon, "ops-diff", "busybox", "sh", "-c", "touch /tmp/new; rm /bin/ls; sleep 60")
    try:
        deadline = time.monotonic() + 10
        while b"/tmp/new" not in (out := daemon.docker("diff", "ops-diff").stdout):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        lines = out.decode().splitlines()
        assert "A /tmp/new" in lines and "D /bin/ls" in lines and "C /tmp" in lines
    finally:
        daemon.docker("rm", "-f", "ops-diff")


def test_stats_no_stream(daemon):
    _run(daemon, "ops-stats", "busybox", "sh", "-c", "while true; do :; done")
    try:
        result = daemon.docker(
            "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}}", "ops-stats"
        )
        assert result.returncode == 0, result.stderr
        name, cpu, usage = result.stdout.decode().split(None, 2)
        assert name == "ops-stats"
        assert float(cpu.rstrip("%")) > 10  # a busy loop
        assert "/" in usage and not usage.startswith("0B")
        client = daemon.client()
        try:
            sample = client.api.stats("ops-stats", stream=False)
        finally:
            client.close()
        assert sample["cpu_stats"]["cpu_usage"]["total_usage"] > 0
        assert sample["precpu_stats"]["cpu_usage"]["total_usage"] > 0
        assert sample["memory_stats"]["usage"] > 0
        assert sample["pids_stats"]["current"] >= 1
    finally:
        daemon.docker("rm", "-f", "ops-stats")


def test_container_prune(daemon):
    daemon.docker("create", "--name", "ops-prune-a", "--label", "prune=yes", "busybox", "true")
    daemon.docker("create", "--name", "ops-prune-b", "--label", "prune=no", "busybox", "true")
    _run(daemon, "ops-prune-running", "--label", "prune=yes", "busybox", "sleep", "60")
    try:
        result = daemon.docker("container", "prune", "-f", "--filter", "label=prune=yes")
        assert result.returncode == 0, result.stderr
        left = daemon.docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
        assert b"ops-prune-a" not in left
        assert b"ops-prune-b" in left and b"ops-prune-running" in left
        assert b"Total reclaimed space" in result.stdout
    finally:
        daemon.docker("rm", "-f", "ops-prune-a", "ops-prune-b", "ops-prune-running")
