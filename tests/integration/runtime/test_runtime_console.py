"""Terminals: the pty master handed over --console-socket (SCM_RIGHTS), as runc does it."""

from __future__ import annotations

import errno
import os
import pty
import select
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
from runtime_helpers import receive_pty_master

pytestmark = pytest.mark.runc

SCRIPT = "; ".join(
    [
        "tty",
        "[ -t 0 ] && echo stdin-is-a-tty",
        "[ -t 1 ] && echo stdout-is-a-tty",
        "stat -c '%t %T' /dev/console",
        "grep ' /dev/console ' /proc/self/mountinfo | cut -d' ' -f4,5,9",
        "ls -l /proc/self/fd/0 | sed 's/.*-> //'",
        "stty size",
    ]
)


@pytest.fixture
def console_socket() -> Iterator[tuple[str, socket.socket]]:
    """A listening UNIX socket (short path: sun_path holds 108 bytes, tmp_path can be longer)."""
    directory = tempfile.mkdtemp(prefix="console-")
    path = os.path.join(directory, "sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    try:
        yield path, server
    finally:
        server.close()
        shutil.rmtree(directory)


def read_until_closed(master: int, timeout: float = 10) -> str:
    """Everything the pty master gives until the last slave is closed (EIO)."""
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if not ready:
            continue
        try:
            data = os.read(master, 4096)
        except OSError as error:
            if error.errno == errno.EIO:
                break
            raise
        if not data:
            break
        chunks.append(data)
    else:
        raise AssertionError(f"the pty stayed open; read so far: {b''.join(chunks)!r}")
    os.close(master)
    return b"".join(chunks).decode()


def read_until(master: int, wanted: bytes, timeout: float = 10) -> str:
    data = b""
    deadline = time.monotonic() + timeout
    while wanted not in data:
        assert time.monotonic() < deadline, f"no {wanted!r} from the pty, only {data!r}"
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            data += os.read(master, 4096)
    return data.decode()


def test_terminal_via_console_socket(runtimes, bundle, console_socket):
    path, server = console_socket
    outputs = {}
    for runtime in runtimes.all:
        made = bundle(["sh", "-c", SCRIPT], terminal=True)
        container_id = f"{runtime.name}-tty"
        runtime.ok("create", "--console-socket", path, "--bundle", made.path, container_id)
        master = receive_pty_master(server)
        runtime.ok("start", container_id)
        outputs[runtime.name] = read_until_closed(master)
        runtime.wait_status(container_id, "stopped")
        runtime.ok("delete", container_id)
    assert outputs["dockyard"] == outputs["runc"]
    lines = outputs["dockyard"].split("\r\n")
    assert lines[:4] == ["/dev/pts/0", "stdin-is-a-tty", "stdout-is-a-tty", "88 0"]
    assert lines[4] == "/0 /dev/console devpts"  # the pty bound over /dev/console
    assert lines[5] == "/dev/pts/0"


def test_exec_with_a_terminal(runtimes, bundle, console_socket):
    path, server = console_socket
    outputs = {}
    for runtime in runtimes.all:
        made = bundle(["sleep", "600"])
        container_id = f"{runtime.name}-c"
        runtime.ok("run", "--detach", "--bundle", made.path, container_id)
        # A console socket goes with --detach (runc refuses it otherwise).
        runtime.ok(
            "exec", "--tty", "--detach", "--console-socket", path, container_id,
            "sh", "-c", SCRIPT,
        )  # fmt: skip
        outputs[runtime.name] = read_until_closed(receive_pty_master(server))
    assert outputs["dockyard"] == outputs["runc"]
    lines = outputs["dockyard"].split("\r\n")
    # The container has no terminal of its own, so the exec's pty is the first one, and
    # /dev/console is not bound (there is no console).
    assert lines[:3] == ["/dev/pts/0", "stdin-is-a-tty", "stdout-is-a-tty"]


def test_terminal_needs_a_console_socket(runtime, bundle):
    made = bundle(["true"], terminal=True)
    for command in (["create"], ["run", "--detach"]):
        result = runtime(*command, "--bundle", made.path, "c")
        assert result.returncode == 1, result
        assert runtime("state", "c").returncode == 1


def test_console_socket_without_a_terminal_is_refused(runtime, bundle, console_socket):
    path, _ = console_socket
    made = bundle(["true"])
    result = runtime("create", "--console-socket", path, "--bundle", made.path, "c")
    assert result.returncode == 1, result
    assert "console socket" in result.stderr
    assert runtime("state", "c").returncode == 1


def test_console_socket_needs_detach(runtime, bundle, console_socket):
    path, _ = console_socket
    made = bundle(["true"], terminal=True)
    result = runtime("run", "--console-socket", path, "--bundle", made.path, "c")
    assert result.returncode == 1, result
    assert "console socket" in result.stderr
    made = bundle(["sleep", "600"])
    runtime.ok("run", "--detach", "--bundle", made.path, "d")
    result = runtime("exec", "--tty", "--console-socket", path, "d", "true")
    assert result.returncode == 255, result
    assert "console socket" in result.stderr


def test_run_in_the_foreground_relays_the_callers_terminal(runtimes, bundle):
    """No console socket: the runtime holds the pty itself and copies our terminal to it."""
    outputs = {}
    for runtime in runtimes.all:
        made = bundle(["sh", "-c", "tty; read line; echo got=$line"], terminal=True)
        master, slave = pty.openpty()
        process = subprocess.Popen(
            runtime.command("run", "--bundle", made.path, f"{runtime.name}-fg"),
            stdin=slave,
            stdout=slave,
            stderr=slave,
        )
        os.close(slave)
        try:
            seen = read_until(master, b"/dev/pts/0\r\n")  # typing earlier could race the setup
            os.write(master, b"hello\r")
            outputs[runtime.name] = seen + read_until_closed(master)
            assert process.wait(timeout=10) == 0
        finally:
            process.kill()
            process.wait()
    assert outputs["dockyard"] == outputs["runc"]
    assert "got=hello" in outputs["dockyard"]
