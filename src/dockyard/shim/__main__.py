"""`python -m dockyard.shim <container dir>`: start one container's monitor in the background.
`python -m dockyard.shim --zygote <socket> <daemon pid>`: a pre-warmed parent that forks
monitors on request (see zygote.py); the daemon uses it, this form remains for a single launch.

The launcher reads one JSON line on our stdout: {"pid": N} once the container is created and
shim.sock listens, or {"error": "..."}.
"""

from __future__ import annotations

import os
import sys

from dockyard.shim.launch import detach_and_run


def main() -> None:
    if sys.argv[1] == "--zygote":
        from dockyard.shim.zygote import serve

        serve(sys.argv[2], int(sys.argv[3]))
        return
    ready = os.dup(1)
    if os.getsid(0) != os.getpid():
        os.setsid()
    if os.fork():
        os._exit(0)  # the launcher reaps this one at once; the monitor is re-parented
    detach_and_run(os.path.abspath(sys.argv[1]), ready)


if __name__ == "__main__":
    main()
