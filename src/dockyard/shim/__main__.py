"""`python -m dockyard.shim <container dir>`: start a container's monitor in the background.

The launcher (the daemon) reads one JSON line on our stdout: {"pid": N} once the container
is created and shim.sock listens, or {"error": "..."}. We detach first (new session, and a
fork so that our parent can exit and the daemon need not reap us), so the container outlives
the daemon.
"""

from __future__ import annotations

import json
import os
import socket
import sys

from dockyard.shim import protocol
from dockyard.shim.monitor import Monitor, socket_path


def main() -> None:
    directory = os.path.abspath(sys.argv[1])
    ready = os.dup(1)
    if os.getsid(0) != os.getpid():
        os.setsid()
    if os.fork():
        os._exit(0)  # the launcher reaps this one at once; the monitor is re-parented
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    # stderr stays: the launcher points it at shim.log in the container's directory.
    os.close(devnull)
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


if __name__ == "__main__":
    main()
