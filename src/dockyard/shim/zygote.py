"""The shim zygote: one pre-warmed Python process that forks a monitor per container.

Starting a fresh interpreter per container costs ~50 ms; a fork of a process that has already
imported the runtime creates the container in a few ms, then execs the monitor program
(launch.py). The zygote dies with the daemon (PDEATHSIG); monitors are in sessions of their
own and outlive both.
"""

from __future__ import annotations

import gc
import os
import signal
import socket

from dockyard.runtime import linux
from dockyard.runtime.drivers import InProcessRuntime
from dockyard.shim import protocol
from dockyard.shim.launch import detach_and_run


def _prewarm() -> None:
    """Import what creating a container uses, so each fork finds it already loaded."""
    import dockyard.runtime.cgroups
    import dockyard.runtime.container  # noqa: F401
    import dockyard.runtime.seccomp as seccomp

    InProcessRuntime("/nonexistent")  # imports the runtime's lifecycle
    seccomp.default_profile()


def serve(path: str, daemon_pid: int, monitor: str) -> None:
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != daemon_pid:
        return  # the daemon died before PDEATHSIG was armed: nobody will ask us for anything
    _prewarm()
    if os.path.exists(path):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(128)
    gc.freeze()
    while True:
        connection, _ = listener.accept()
        with connection:
            line = connection.makefile("rb").readline()
            try:
                directory = protocol.decode(line)["dir"]
            except (ValueError, KeyError):
                continue
            child = os.fork()
            if child == 0:
                listener.close()
                os.setsid()
                if os.fork():
                    os._exit(0)
                detach_and_run(directory, monitor, connection.detach())
            os.waitpid(child, 0)
