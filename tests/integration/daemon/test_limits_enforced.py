"""Resource limits set through the API are enforced by the kernel."""

from __future__ import annotations

import time


def test_memory_limit_oom_kills_and_is_recorded(daemon):
    # `tail /dev/zero` buffers an endless line: it grows until the cgroup's limit kills it.
    result = daemon.docker(
        "run",
        "--name",
        "hog",
        "-m",
        "32m",
        "--memory-swap",
        "32m",
        "busybox",
        "tail",
        "/dev/zero",
        timeout=120,
    )
    assert result.returncode == 137, result.stderr
    state = daemon.docker("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "hog")
    assert state.stdout.split() == [b"true", b"137"]
    events = daemon.docker(
        "events",
        "--since",
        "0",
        "--until",
        str(int(time.time()) + 1),
        "--filter",
        "container=hog",
        "--format",
        "{{.Action}}",
    )
    assert b"oom" in events.stdout.split()
    assert daemon.docker("rm", "hog").returncode == 0


def test_pids_limit_stops_a_fork_bomb(daemon):
    script = "for i in $(seq 1 40); do sleep 1 & done; echo all forked"
    limited = daemon.docker(
        "run", "--rm", "--pids-limit", "10", "busybox", "sh", "-c", script, timeout=120
    )
    assert limited.returncode != 0
    assert b"can't fork" in limited.stderr
    assert b"all forked" not in limited.stdout
    free = daemon.docker("run", "--rm", "busybox", "sh", "-c", script, timeout=120)
    assert free.returncode == 0 and b"all forked" in free.stdout


def test_cpu_and_memory_settings_reach_the_cgroup(daemon):
    result = daemon.docker(
        "run",
        "--rm",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "busybox",
        "cat",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
        "/sys/fs/cgroup/cpu/cpu.shares",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [b"67108864", b"50000", b"100000", b"512"]
