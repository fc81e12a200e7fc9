"""Running a monitor in an already detached process: stdio, shim.sock, create, serve."""

from __future__ import annotations

import json
import os
import socket

from dockyard.shim import protocol
from dockyard.shim.monitor import Monitor, socket_path


def detach_and_run(directory: str, ready: int) -> None:
    """Never returns. `ready` receives the launcher's one JSON line."""
    devnull = os.open(os.devnull, os.O_RDWR)
    log = os.open(os.path.join(directory, "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(log, 2)
    os.close(devnull)
    os.close(log)
    try:
        with open(os.path.join(directory, "shim.json")) as f:
            config = json.load(f)
        monitor = Monitor(directory, config)
        directory_fd = os.open(directory, os.O_PATH)
        path = socket_path(directory_fd)
        if os.path.exists(path):
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(64)
        monitor.create()
    except Exception as error:  # every failure goes back to the launcher
        os.write(ready, protocol.encode({"error": str(error) or type(error).__name__}))
        os._exit(1)
    monitor.serve(listener, ready)
    os.close(directory_fd)
    os._exit(0)
