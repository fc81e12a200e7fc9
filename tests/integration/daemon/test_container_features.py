"""Container features of `docker run`, each checked from inside the container it configures,
through the real docker CLI."""

from __future__ import annotations

import json
import os
import time


def run(daemon, *args: str, timeout: float = 60) -> str:
    result = daemon.docker("run", "--rm", *args, timeout=timeout)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def status_field(output: str, field: str) -> str:
    for line in output.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{field} not in {output!r}")


def test_init_runs_the_command_under_tini(daemon):
    output = run(daemon, "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
    assert output.startswith("/sbin/docker-init -- sh -c")


def test_read_only_rootfs_and_tmpfs(daemon):
    output = run(
        daemon,
        "--read-only",
        "--tmpfs",
        "/scratch:size=1m",
        "busybox",
        "sh",
        "-c",
        "touch /x 2>&1; touch /scratch/ok && echo scratch-ok; grep ' /scratch ' /proc/mounts",
    )
    assert "Read-only file system" in output
    assert "scratch-ok" in output
    assert "tmpfs" in output and "size=1024k" in output


def test_capabilities_add_drop_and_privileged(daemon):
    script = "grep CapEff /proc/self/status"
    default = int(status_field(run(daemon, "busybox", "sh", "-c", script), "CapEff"), 16)
    dropped = int(
        status_field(run(daemon, "--cap-drop", "NET_RAW", "busybox", "sh", "-c", script), "CapEff"),
        16,
    )
    added = int(
        status_field(run(daemon, "--cap-add", "SYS_TIME", "busybox", "sh", "-c", script), "CapEff"),
        16,
    )
    assert default == 0xA80425FB  # Docker's 14 default capabilities
    assert dropped == default & ~(1 << 13)
    assert added == default | (1 << 25)
    privileged = run(
        daemon,
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "grep -E 'CapEff|Seccomp:' /proc/self/status; mount -t tmpfs none /tmp && echo mounted",
    )
    assert status_field(privileged, "Seccomp") == "0"
    assert "mounted" in privileged


def test_seccomp_unconfined_and_no_new_privileges(daemon):
    confined = run(daemon, "busybox", "grep", "-E", "Seccomp:|NoNewPrivs", "/proc/self/status")
    assert status_field(confined, "Seccomp") == "2"
    assert status_field(confined, "NoNewPrivs") == "0"
    loose = run(
        daemon,
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "grep",
        "-E",
        "Seccomp:|NoNewPrivs",
        "/proc/self/status",
    )
    assert status_field(loose, "Seccomp") == "0"
    assert status_field(loose, "NoNewPrivs") == "1"


def test_ulimits_sysctls_oom_score_and_shm(daemon):
    output = run(
        daemon,
        "--ulimit",
        "nofile=512:1024",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--oom-score-adj",
        "300",
        "--shm-size",
        "8m",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; cat /proc/sys/net/ipv4/ip_forward; "
        "cat /proc/self/oom_score_adj; df -k /dev/shm | tail -1",
    )
    lines = output.splitlines()
    assert lines[:4] == ["512", "1024", "1", "300"]
    assert lines[4].split()[1] == "8192"


def test_ulimit_above_the_hosts_hard_limit_is_a_clear_error(daemon):
    with open("/proc/self/limits") as f:
        hard = next(int(line.split()[4]) for line in f if line.startswith("Max open files"))
    result = daemon.docker(
        "run", "--rm", "--ulimit", f"nofile={hard * 4}:{hard * 4}", "busybox", "true"
    )
    assert result.returncode != 0, "raising nofile above the hard limit needs CAP_SYS_RESOURCE"
    assert b"CAP_SYS_RESOURCE" in result.stderr


def test_devices_and_group_add(daemon):
    output = run(
        daemon,
        "--device",
        "/dev/null:/dev/mynull",
        "--group-add",
        "mail",
        "--group-add",
        "1234",
        "busybox",
        "sh",
        "-c",
        "ls -l /dev/mynull; echo hi > /dev/mynull && echo wrote; id -G",
    )
    assert output.startswith("crw")
    assert "wrote" in output
    groups = output.splitlines()[-1].split()
    assert "12" in groups and "1234" in groups  # mail is gid 12 in the busybox image


def test_hostname_domainname_hosts_and_dns(daemon):
    output = run(
        daemon,
        "--hostname",
        "box",
        "--domainname",
        "example.org",
        "--add-host",
        "db.local:10.1.2.3",
        "--dns",
        "9.9.9.9",
        "--dns-search",
        "corp.example",
        "--dns-option",
        "ndots:2",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /proc/sys/kernel/domainname; cat /etc/hosts /etc/resolv.conf",
    )
    lines = output.splitlines()
    assert lines[:2] == ["box", "example.org"]
    assert "10.1.2.3\tdb.local" in output
    assert "nameserver 9.9.9.9" in output
    assert "search corp.example" in output
    assert "options ndots:2" in output


def test_host_namespaces(daemon):
    with open("/proc/sys/kernel/hostname") as f:
        host_name = f.read().strip()
    host = run(
        daemon,
        "--pid",
        "host",
        "--uts",
        "host",
        "--network",
        "host",
        "--ipc",
        "host",
        "busybox",
        "sh",
        "-c",
        "hostname; ls /proc | grep -c '^[0-9]'; "
        "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc",
    )
    lines = host.splitlines()
    assert lines[0] == host_name
    assert int(lines[1]) > 20  # the host's processes are visible
    assert lines[2] == os.readlink("/proc/self/ns/net")
    assert lines[3] == os.readlink("/proc/self/ns/ipc")
    isolated = run(
        daemon,
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ls /sys/class/net; ls /proc | grep -c '^[0-9]'",
    )
    assert isolated.split()[0] == "lo" and len(isolated.split()) == 2


def test_join_another_containers_namespaces(daemon):
    target = daemon.docker(
        "run", "-d", "--name", "ns-target", "--hostname", "target", "busybox", "sleep", "120"
    )
    assert target.returncode == 0, target.stderr
    try:
        output = run(
            daemon,
            "--network",
            "container:ns-target",
            "--pid",
            "container:ns-target",
            "busybox",
            "sh",
            "-c",
            "hostname; ps -o comm | grep -c sleep",
        )
        assert output.split()[1] == "1"  # the target's sleep is visible
    finally:
        daemon.docker("rm", "-f", "ns-target")


def test_entrypoint_cmd_user_workdir_labels(daemon):
    output = run(daemon, "--entrypoint", "echo", "busybox", "from", "entrypoint")
    assert output == "from entrypoint\n"
    output = run(
        daemon,
        "-u",
        "daemon:mail",
        "-w",
        "/var/tmp",
        "--label",
        "k=v",
        "busybox",
        "sh",
        "-c",
        "id -u; id -g; pwd",
    )
    assert output.split() == ["1", "12", "/var/tmp"]
    unknown = daemon.docker("run", "--rm", "-u", "nosuchuser", "busybox", "true")
    assert unknown.returncode != 0
    assert b"unable to find user nosuchuser" in unknown.stderr


def test_stop_signal_and_timeout(daemon):
    started = daemon.docker(
        "run",
        "-d",
        "--name",
        "sig",
        "--stop-signal",
        "USR1",
        "--stop-timeout",
        "5",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got usr1; exit 0' USR1; while true; do sleep 0.1; done",
    )
    assert started.returncode == 0, started.stderr
    try:
        time.sleep(0.5)
        begun = time.monotonic()
        assert daemon.docker("stop", "sig").returncode == 0
        assert time.monotonic() - begun < 4
        assert b"got usr1" in daemon.docker("logs", "sig").stdout
        state = daemon.docker("inspect", "-f", "{{.State.ExitCode}}", "sig").stdout.strip()
        assert state == b"0"
    finally:
        daemon.docker("rm", "-f", "sig")


def test_log_rotation_and_log_driver_none(daemon):
    name = "rotating"
    result = daemon.docker(
        "run",
        "--name",
        name,
        "--log-opt",
        "max-size=2k",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 1 300); do echo line-$i-padding-padding; done",
    )
    assert result.returncode == 0, result.stderr
    try:
        log_path = daemon.docker("inspect", "-f", "{{.LogPath}}", name).stdout.decode().strip()
        assert os.path.getsize(log_path) <= 2048
        assert os.path.exists(log_path + ".1")
        assert not os.path.exists(log_path + ".2")
        logs = daemon.docker("logs", name).stdout.decode().splitlines()
        assert logs[-1] == "line-300-padding-padding"
        assert len(logs) < 300  # the oldest lines were rotated away
        with open(log_path) as log:
            first = json.loads(log.readline())
        assert set(first) == {"log", "stream", "time"}
    finally:
        daemon.docker("rm", name)
    silent = daemon.docker(
        "run", "--name", "silent", "--log-driver", "none", "busybox", "echo", "nothing kept"
    )
    try:
        assert silent.returncode == 0
        logs = daemon.docker("logs", "silent")
        assert logs.returncode != 0
        assert b"does not support reading" in logs.stderr
    finally:
        daemon.docker("rm", "silent")


def test_blkio_weight_and_memory_reservation_reach_the_cgroup(daemon):
    output = run(
        daemon,
        "--blkio-weight",
        "300",
        "--memory-reservation",
        "32m",
        "busybox",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/blkio/blkio.bfq.weight "
        "/sys/fs/cgroup/blkio/blkio.weight 2>/dev/null | head -1; "
        "cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes",
    )
    lines = output.split()
    assert lines[0].split()[-1] == "300"
    assert lines[-1] == str(32 * 1024 * 1024)
