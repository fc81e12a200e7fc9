"""`docker exec` through the real docker CLI and docker-py: output, exit codes, environment,
working directory, user, stdin, TTY, detached execs, and the errors Docker gives."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time

import pytest


@pytest.fixture(scope="module")
def box(daemon):
    name = "exec-box"
    started = daemon.docker(
        "run", "-d", "--name", name, "-e", "FROM_RUN=1", "busybox", "sleep", "300"
    )
    assert started.returncode == 0, started.stderr
    yield name
    daemon.docker("rm", "-f", name)


def test_exec_output_and_exit_code(daemon, box):
    result = daemon.docker("exec", box, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert result.returncode == 7
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\n"
    assert daemon.docker("exec", box, "true").returncode == 0


def test_exec_env_workdir_user(daemon, box):
    result = daemon.docker(
        "exec", "-e", "EXTRA=2", "-w", "/tmp", "-u", "nobody", box,
        "sh", "-c", "echo $FROM_RUN $EXTRA; pwd; id -u; id -g",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [b"1", b"2", b"/tmp", b"65534", b"65534"]
    # Without -u the container's user (root), its working directory and its environment.
    result = daemon.docker("exec", box, "sh", "-c", "id -u; pwd; echo $FROM_RUN")
    assert result.stdout.split() == [b"0", b"/", b"1"]


def test_exec_privileged_gets_all_capabilities(daemon, box):
    plain = daemon.docker("exec", box, "grep", "CapEff", "/proc/self/status").stdout
    result = daemon.docker("exec", "--privileged", box, "grep", "CapEff", "/proc/self/status")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[1], 16) > int(plain.split()[1], 16)


def test_exec_stdin(daemon, box):
    result = daemon.docker("exec", "-i", box, "sh", "-c", "tr a-z A-Z", input=b"piped text\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"PIPED TEXT\n"


def test_exec_missing_program_is_126(daemon, box):
    result = daemon.docker("exec", box, "no-such-program")
    assert result.returncode == 126
    assert b"no-such-program" in result.stderr


def test_exec_tty_through_docker_py(daemon, box):
    client = daemon.client()
    try:
        container = client.containers.get(box)
        code, output = container.exec_run(["sh", "-c", "tty; echo $TERM; exit 3"], tty=True)
    finally:
        client.close()
    assert code == 3
    lines = output.decode().split("\r\n")
    assert lines[0].startswith("/dev/pts/")
    assert lines[1] == "xterm"


def test_exec_it_from_a_terminal(daemon, box):
    """The CLI in a real pty: `docker exec -it` with input typed and the size of the pty."""
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 31, 101, 0, 0))
        os.environ.update(daemon.env)
        os.execvp("docker", ["docker", "exec", "-it", box, "sh"])
    try:
        _read_until(fd, b"# ")
        os.write(fd, b"stty size; echo typed-$((6*7)); exit 5\r")
        output = _read_until(fd, b"typed-42")
        assert b"\r\n31 101\r\n" in output  # the CLI's terminal size reached the exec's pty
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 5


def _read_until(fd: int, marker: bytes, timeout: float = 20) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data += os.read(fd, 4096)
            except OSError:
                break
    assert marker in data, data
    return data


def test_exec_detached_and_inspect(daemon, box):
    result = daemon.docker("exec", "-d", box, "sh", "-c", "sleep 0.3; touch /tmp/detached-done")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    deadline = time.monotonic() + 10
    while daemon.docker("exec", box, "test", "-e", "/tmp/detached-done").returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    client = daemon.client()
    try:
        api = client.api
        exec_id = api.exec_create(box, ["sh", "-c", "exit 4"])["Id"]
        before = api.exec_inspect(exec_id)
        assert before["Running"] is False and before["ExitCode"] is None
        api.exec_start(exec_id)
        after = api.exec_inspect(exec_id)
        assert after["ExitCode"] == 4
        assert after["ProcessConfig"]["entrypoint"] == "sh"
        assert after["ProcessConfig"]["arguments"] == ["-c", "exit 4"]
        assert after["ContainerID"] == client.containers.get(box).id
        assert exec_id in api.inspect_container(box)["ExecIDs"]
    finally:
        client.close()


def test_exec_events(daemon, box):
    since = str(time.time() - 1)
    assert daemon.docker("exec", box, "sh", "-c", "exit 2").returncode == 2
    template = '{{.Action}} {{index .Actor.Attributes "exitCode"}}'
    result = daemon.docker(
        "events", "--since", since, "--until", str(time.time() + 0.5),
        "--filter", f"container={box}", "--format", template,
    )  # fmt: skip
    actions = result.stdout.decode().splitlines()
    assert actions[-3:] == ["exec_create: sh -c exit 2 ", "exec_start: sh -c exit 2 ", "exec_die 2"]


def test_exec_errors(daemon):
    daemon.docker("create", "--name", "exec-stopped", "busybox", "true")
    try:
        result = daemon.docker("exec", "exec-stopped", "true")
        assert result.returncode != 0
        assert b"is not running" in result.stderr
        missing = daemon.docker("exec", "no-such-container", "true")
        assert b"No such container: no-such-container" in missing.stderr
    finally:
        daemon.docker("rm", "-f", "exec-stopped")


def test_exec_in_paused_container_is_refused(daemon, box):
    assert daemon.docker("pause", box).returncode == 0
    try:
        result = daemon.docker("exec", box, "true")
        assert result.returncode != 0
        assert b"is paused, unpause the container before exec" in result.stderr
    finally:
        assert daemon.docker("unpause", box).returncode == 0
