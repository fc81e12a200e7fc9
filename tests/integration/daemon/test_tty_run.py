"""TTY containers: raw output through docker-py, `docker run -it` in a pty, resize."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time


def test_docker_py_tty_output_is_raw(daemon):
    client = daemon.client()
    output = client.containers.run(
        "busybox", ["sh", "-c", "echo a; echo b >&2"], tty=True, remove=True
    )
    assert output == b"a\r\nb\r\n"  # one stream, the terminal's CRLF


def _read_until(fd: int, wanted: bytes, timeout: float = 15) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while wanted not in data:
        assert time.monotonic() < deadline, data
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data += os.read(fd, 4096)
            except OSError:
                break
    return data


def test_docker_cli_interactive_in_a_pty_with_resize(daemon):
    master, slave = pty.openpty()
    os.set_blocking(master, True)
    process = subprocess.Popen(
        ["docker", "run", "-it", "--rm", "--name", "tty-it", "busybox", "sh"],
        env=daemon.env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    try:
        _read_until(master, b"# ")
        os.write(master, b"echo $((6*7))\r")
        assert b"42" in _read_until(master, b"42")
        resized = daemon.client().api.resize("tty-it", height=33, width=97)
        assert resized is None
        os.write(master, b"stty size\r")
        assert b"33 97" in _read_until(master, b"33 97")
        os.write(master, b"exit 5\r")
        assert process.wait(20) == 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
        daemon.docker("rm", "-f", "tty-it")
