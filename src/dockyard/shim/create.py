"""Creating a container in the process that then becomes its monitor.

The runtime's create runs right here: this process execs the monitor program (dockyard-shim)
next, so whatever the create leaves in memory goes with the interpreter. As subreaper we
inherit the container's init whichever process of the runtime forked it. What comes back is
the init's pid and our ends of its stdio (pipes, or the pty master), which launch.py hands to
the monitor.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios
from dataclasses import dataclass

from dockyard.runtime import linux
from dockyard.runtime.drivers import OCIRuntime, RuntimeFailure, runtime_for


@dataclass
class Created:
    pid: int
    stdout: int | None = None  # read ends of the output pipes
    stderr: int | None = None
    stdin: int | None = None  # write end of the stdin pipe (OpenStdin)
    pty: int | None = None  # the pty master (Tty): output and input both


def socket_path(directory_fd: int, name: str) -> str:
    """A short path to a socket in a directory (sun_path holds only 108 bytes), valid in other
    processes too while we hold the fd: runc connects to the console socket by path."""
    return f"/proc/{os.getpid()}/fd/{directory_fd}/{name}"


def create(directory: str, config: dict) -> Created:
    runtime = runtime_for(config["runtime"], config["runtime_root"])
    pid_file = os.path.join(directory, "init.pid")
    # The init's parent exits after create: as subreaper we inherit the container.
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    if config.get("tty"):
        created = _create_with_pty(runtime, directory, config, pid_file)
        height, width = config.get("console_size") or (0, 0)
        if height and width:
            fcntl.ioctl(created.pty, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        return created
    return _create_with_pipes(runtime, config, pid_file)


def _create(
    runtime: OCIRuntime,
    config: dict,
    stdio: tuple[int, int, int],
    console_fd: int | None,
    console_path: str | None,
    pid_file: str,
) -> int:
    try:
        runtime.delete(config["id"], force=True)  # leftovers of an earlier run
    except RuntimeFailure:
        pass
    return runtime.create(config["id"], config["bundle"], stdio, console_fd, console_path, pid_file)


def _create_with_pipes(runtime: OCIRuntime, config: dict, pid_file: str) -> Created:
    devnull = os.open(os.devnull, os.O_RDWR)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe() if config.get("stdin") else (devnull, None)
    try:
        pid = _create(runtime, config, (in_r, out_w, err_w), None, None, pid_file)
    finally:
        for fd in {out_w, err_w, in_r, devnull}:
            os.close(fd)
    return Created(pid=pid, stdout=out_r, stderr=err_r, stdin=in_w)


def _create_with_pty(runtime: OCIRuntime, directory: str, config: dict, pid_file: str) -> Created:
    devnull = os.open(os.devnull, os.O_RDWR)
    stdio = (devnull, devnull, devnull)
    try:
        if runtime.name == "dockyard-runtime":
            ours, theirs = socket.socketpair()
            with ours, theirs:
                pid = _create(runtime, config, stdio, theirs.fileno(), None, pid_file)
                master = _receive_fd(ours)
        else:
            directory_fd = os.open(directory, os.O_PATH)
            path = socket_path(directory_fd, "console.sock")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
                listener.bind(path)
                listener.listen(1)
                pid = _create(runtime, config, stdio, None, path, pid_file)
                connection, _ = listener.accept()
                with connection:
                    master = _receive_fd(connection)
                os.unlink(path)
            os.close(directory_fd)
    finally:
        os.close(devnull)
    return Created(pid=pid, pty=master)


def _receive_fd(sock: socket.socket) -> int:
    _, fds, _, _ = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise RuntimeFailure("the runtime sent no pty master")
    return fds[0]
