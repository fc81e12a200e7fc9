"""Becoming one container's monitor: stdio, shim.sock, create, then exec dockyard-shim.

This runs in a process forked by the zygote and already detached from it. The container is
created here in Python; the process then execs the monitor program in place, so it stays the
parent of the container's init while the interpreter's memory is given back.
"""

from __future__ import annotations

import json
import os
import signal
import socket

from dockyard.shim import protocol
from dockyard.shim.create import Created, create, socket_path


def detach_and_run(directory: str, monitor: str, ready: int) -> None:
    """Never returns. `ready` receives the launcher's one JSON line: {"pid": N} from the
    monitor once it serves, or {"error": "..."} from here."""
    devnull = os.open(os.devnull, os.O_RDWR)
    log = os.open(os.path.join(directory, "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(log, 2)
    os.close(devnull)
    os.close(log)
    created: Created | None = None
    try:
        with open(os.path.join(directory, "shim.json")) as f:
            config = json.load(f)
        directory_fd = os.open(directory, os.O_PATH)
        path = socket_path(directory_fd, "shim.sock")
        if os.path.exists(path):
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(64)
        os.close(directory_fd)
        log_config = config.get("log") or {}
        if log_config.get("path"):  # fail before the container exists, not after
            os.close(os.open(log_config["path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640))
        created = create(directory, config)
        argv = monitor_argv(monitor, directory, config, created, listener.fileno(), ready)
        for fd in (
            listener.fileno(),
            ready,
            created.stdout,
            created.stderr,
            created.stdin,
            created.pty,
        ):
            if fd is not None:
                os.set_inheritable(fd, True)
        os.execv(monitor, argv)
    except Exception as error:  # every failure goes back to the launcher
        if created is not None:
            os.kill(created.pid, signal.SIGKILL)  # nobody would watch it
        os.write(ready, protocol.encode({"error": str(error) or type(error).__name__}))
        os._exit(1)


def monitor_argv(
    monitor: str, directory: str, config: dict, created: Created, listener: int, ready: int
) -> list[str]:
    argv = [monitor, "--dir", directory, "--pid", str(created.pid)]
    argv += ["--listen-fd", str(listener), "--ready-fd", str(ready)]
    if created.pty is not None:
        argv += ["--pty-fd", str(created.pty)]
    else:
        argv += ["--stdout-fd", str(created.stdout), "--stderr-fd", str(created.stderr)]
        if created.stdin is not None:
            argv += ["--stdin-fd", str(created.stdin)]
    if config.get("stdin_once"):
        argv.append("--stdin-once")
    log = config.get("log") or {}
    if log.get("driver", "json-file") == "json-file" and log.get("path"):
        argv += ["--log", log["path"], "--log-max-size", str(log.get("max_size", 0))]
        argv += ["--log-max-file", str(log.get("max_file", 1))]
    return argv
