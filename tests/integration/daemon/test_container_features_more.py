"""More `docker run` features through the real docker CLI, each checked from inside the
container or from the kernel (cgroup files, /proc), not only through inspect: IPC sharing,
the hostname of a container sharing another's network, stop timeouts, CPU quota and cpuset,
custom seccomp profiles, and tmpfs mounts with size and mode."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import docker
import pytest

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Counts its starts in /tmp/starts once SIGTERM is ignored (the rootfs survives a restart).
TERM_IGNORING = 'trap "" TERM; echo up >> /tmp/starts; while true; do sleep 0.1; done'


def run(daemon, *args: str, timeout: float = 60) -> str:
    result = daemon.docker("run", "--rm", *args, timeout=timeout)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def start(daemon, name: str, *args: str) -> str:
    """`docker run -d --name name ...`; the container's full id."""
    result = daemon.docker("run", "-d", "--name", name, *args)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


def inspect(daemon, name: str, template: str) -> str:
    result = daemon.docker("inspect", "-f", template, name)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


def wait_for_starts(daemon, name: str, count: int, deadline: float = 10) -> None:
    """Poll until the TERM_IGNORING program has begun its `count`th run."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        result = daemon.docker("exec", name, "sh", "-c", "wc -l < /tmp/starts")
        if result.returncode == 0 and result.stdout.strip() == str(count).encode():
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} did not reach start {count}")


def cgroup_dir(daemon, controller: str, container_id: str) -> Path:
    """The container's cgroup directory for a v1 controller (alone or co-mounted)."""
    for hierarchy in CGROUP_ROOT.iterdir():
        if controller in hierarchy.name.split(","):
            path = hierarchy / daemon.cgroup_parent / container_id
            if path.is_dir():
                return path
    unified = CGROUP_ROOT / daemon.cgroup_parent / container_id  # cgroup v2
    assert unified.is_dir(), f"no {controller} cgroup for {container_id}"
    return unified


# -- IPC and hostname sharing ----------------------------------------------------------------


def test_ipc_container_mode_shares_dev_shm_and_the_ipc_namespace(daemon):
    start(daemon, "cfm-ipc-donor", "--ipc", "shareable", "busybox", "sleep", "120")
    try:
        written = daemon.docker(
            "exec", "cfm-ipc-donor", "sh", "-c", "echo from-donor > /dev/shm/donor-note"
        )
        assert written.returncode == 0, written.stderr.decode()
        joiner = run(
            daemon,
            "--ipc",
            "container:cfm-ipc-donor",
            "busybox",
            "sh",
            "-c",
            "readlink /proc/self/ns/ipc; cat /dev/shm/donor-note; "
            "echo from-joiner > /dev/shm/joiner-note",
        ).split()
        donor = daemon.docker(
            "exec",
            "cfm-ipc-donor",
            "sh",
            "-c",
            "readlink /proc/self/ns/ipc; cat /dev/shm/joiner-note",
        )
        assert donor.returncode == 0, donor.stderr.decode()
        donor_ns, joiner_note = donor.stdout.decode().split()
        assert joiner[0].startswith("ipc:[")
        assert joiner[0] == donor_ns  # the same IPC namespace
        assert joiner[1] == "from-donor"  # the donor's /dev/shm, seen by the joiner
        assert joiner_note == "from-joiner"  # and written back into it
    finally:
        daemon.docker("rm", "-f", "cfm-ipc-donor")


def test_ipc_of_a_private_container_cannot_be_joined(daemon):
    """As dockerd 20.10: containers are "private" by default; only a shareable one is joined."""
    start(daemon, "cfm-ipc-private", "busybox", "sleep", "120")
    try:
        assert inspect(daemon, "cfm-ipc-private", "{{.HostConfig.IpcMode}}") == "private"
        joined = daemon.docker(
            "run", "--rm", "--ipc", "container:cfm-ipc-private", "busybox", "true"
        )
        assert joined.returncode == 125
        assert b"non-shareable IPC (hint: use IpcMode:shareable for the donor container)" in (
            joined.stderr
        )
    finally:
        daemon.docker("rm", "-f", "cfm-ipc-private")


def test_network_container_mode_takes_the_other_containers_hostname(daemon):
    # The docker CLI refuses `--uts container:<name>` ("--uts: invalid UTS mode"); a
    # container shares another's hostname by joining its network, as dockerd copies the
    # joined container's Hostname and /etc/hostname.
    start(daemon, "cfm-uts-donor", "--hostname", "shared-host", "busybox", "sleep", "120")
    try:
        output = run(
            daemon,
            "--network",
            "container:cfm-uts-donor",
            "busybox",
            "sh",
            "-c",
            "hostname; cat /etc/hostname",
        )
        assert output.split() == ["shared-host", "shared-host"]
    finally:
        daemon.docker("rm", "-f", "cfm-uts-donor")


def test_hostname_conflicts_with_network_container_mode(daemon):
    start(daemon, "cfm-uts-donor2", "--hostname", "donor", "busybox", "sleep", "120")
    try:
        result = daemon.docker(
            "run",
            "--rm",
            "--network",
            "container:cfm-uts-donor2",
            "--hostname",
            "mine",
            "busybox",
            "hostname",
        )
        assert result.returncode == 125, result.stdout
        assert b"conflicting options: hostname and the network mode" in result.stderr
    finally:
        daemon.docker("rm", "-f", "cfm-uts-donor2")


# -- stop timeout ----------------------------------------------------------------------------


def test_stop_timeout_kills_a_container_that_ignores_sigterm(daemon):
    name = "cfm-stop-timeout"
    start(daemon, name, "--stop-timeout", "1", "busybox", "sh", "-c", TERM_IGNORING)
    try:
        assert inspect(daemon, name, "{{.Config.StopTimeout}}") == "1"
        wait_for_starts(daemon, name, 1)
        pid = int(inspect(daemon, name, "{{.State.Pid}}"))
        assert os.path.exists(f"/proc/{pid}")
        begun = time.monotonic()
        stopped = daemon.docker("stop", name)
        elapsed = time.monotonic() - begun
        assert stopped.returncode == 0, stopped.stderr.decode()
        assert 0.8 <= elapsed <= 5, elapsed  # the container's StopTimeout, not the default 10 s
        assert inspect(daemon, name, "{{.State.Running}} {{.State.ExitCode}}") == "false 137"
        assert not os.path.exists(f"/proc/{pid}")  # SIGKILLed, really gone

        restarted = daemon.docker("start", name)
        assert restarted.returncode == 0, restarted.stderr.decode()
        wait_for_starts(daemon, name, 2)
        pid = int(inspect(daemon, name, "{{.State.Pid}}"))
        begun = time.monotonic()
        stopped = daemon.docker("stop", "-t", "0", name)
        elapsed = time.monotonic() - begun
        assert stopped.returncode == 0, stopped.stderr.decode()
        assert elapsed < 2, elapsed  # -t 0 overrides StopTimeout: killed at once
        assert inspect(daemon, name, "{{.State.Running}} {{.State.ExitCode}}") == "false 137"
        assert not os.path.exists(f"/proc/{pid}")
    finally:
        daemon.docker("rm", "-f", name)


# -- CPU quota and cpuset ----------------------------------------------------------------------


def test_cpu_quota_period_and_cpuset_reach_the_cgroup_and_are_enforced(daemon):
    name = "cfm-cpu"
    container_id = start(
        daemon,
        name,
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "100000",
        "--cpuset-cpus",
        "0",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    )
    try:
        cpu = cgroup_dir(daemon, "cpu", container_id)
        cpuset = cgroup_dir(daemon, "cpuset", container_id)
        if (cpu / "cpu.max").exists():  # cgroup v2
            assert (cpu / "cpu.max").read_text().split() == ["50000", "100000"]
        else:
            assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
            assert (cpu / "cpu.cfs_period_us").read_text().strip() == "100000"
        assert (cpuset / "cpuset.cpus").read_text().strip() == "0"

        inside = daemon.docker(
            "exec", name, "sh", "-c", "grep Cpus_allowed_list /proc/self/status; nproc"
        )
        assert inside.returncode == 0, inside.stderr.decode()
        lines = inside.stdout.decode().splitlines()
        assert lines[0].split() == ["Cpus_allowed_list:", "0"]
        assert lines[1] == "1"

        # The busy loop wants a whole CPU: the kernel throttles it to half of one.
        stat_file = cpu / "cpu.stat"
        deadline = time.monotonic() + 5
        throttled = 0
        while time.monotonic() < deadline:
            stats = dict(line.split() for line in stat_file.read_text().splitlines())
            throttled = int(stats["nr_throttled"])
            if throttled > 0:
                break
            time.sleep(0.1)
        assert throttled > 0, stat_file.read_text()
    finally:
        daemon.docker("rm", "-f", name)


# -- seccomp -----------------------------------------------------------------------------------


def test_custom_seccomp_profile_denies_its_syscalls_only(daemon, tmp_path):
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
            }
        )
    )
    script = (
        "mkdir /tmp/x 2>&1; echo mkdir=$?; touch /tmp/y && echo touch-ok; "
        "ls /tmp; grep Seccomp: /proc/self/status"
    )
    denied = run(daemon, "--security-opt", f"seccomp={profile}", "busybox", "sh", "-c", script)
    assert "Operation not permitted" in denied
    assert "mkdir=1" in denied
    assert "touch-ok" in denied
    assert "x" not in denied.split()
    assert "Seccomp:\t2" in denied
    # The same command under the default profile creates the directory.
    allowed = run(daemon, "busybox", "sh", "-c", script)
    assert "mkdir=0" in allowed
    assert "x" in allowed.split()


def test_invalid_seccomp_profile_fails_the_run(daemon, tmp_path):
    profile = tmp_path / "broken.json"
    profile.write_text('{"defaultAction": SCMP_ACT_ALLOW')
    result = daemon.docker("run", "--rm", "--security-opt", f"seccomp={profile}", "busybox", "true")
    assert result.returncode == 125
    assert b"seccomp" in result.stderr


def test_invalid_seccomp_profile_through_the_api_is_refused(daemon):
    # The docker CLI checks the file's JSON itself; a client of the API (docker-py) sends
    # the profile as is, and the daemon must refuse it (dockerd: at start, a 500 with
    # "Decoding seccomp profile failed: ..."; refusing it at create is as good).
    name = "cfm-seccomp-bad"
    api = daemon.client().api
    host_config = api.create_host_config(security_opt=['seccomp={"defaultAction": nope'])
    try:
        with pytest.raises(docker.errors.APIError) as raised:
            created = api.create_container("busybox", "true", host_config=host_config, name=name)
            api.start(created["Id"])
        assert "decoding seccomp profile failed" in str(raised.value.explanation).lower()
        listed = daemon.docker("ps", "-q", "--filter", f"name={name}")
        assert listed.stdout.strip() == b""  # nothing runs unconfined
    finally:
        daemon.docker("rm", "-f", name)


# -- tmpfs mounts -----------------------------------------------------------------------------


def test_tmpfs_mount_with_size_and_mode(daemon):
    output = run(
        daemon,
        "--mount",
        "type=tmpfs,destination=/scratch,tmpfs-size=1m,tmpfs-mode=1770",
        "busybox",
        "sh",
        "-c",
        "grep ' /scratch ' /proc/mounts; stat -c %a /scratch; "
        "dd if=/dev/zero of=/scratch/big bs=1M count=2 2>&1; echo dd=$?; "
        "stat -c %s /scratch/big",
    )
    lines = output.splitlines()
    mount = lines[0].split()
    assert mount[1:3] == ["/scratch", "tmpfs"]
    options = mount[3].split(",")
    assert "size=1024k" in options and "mode=1770" in options
    assert lines[1] == "1770"
    assert "No space left on device" in output
    assert "dd=1" in lines
    assert int(lines[-1]) <= 1024 * 1024  # the write stopped at the size limit
