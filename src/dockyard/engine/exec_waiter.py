"""Waits for a process `<runtime> exec -d` leaves behind (a TTY exec), as its subreaper.

Usage: python -m dockyard.engine.exec_waiter PID_FILE RUNTIME_ARGV...

The detached runtime exits once the process runs; being a child subreaper we inherit the
process and exit with its status (shell style), or with the runtime's status if it failed.
"""

from __future__ import annotations

import subprocess
import sys

from dockyard.runtime import linux
from dockyard.runtime.container import wait_for


def main(argv: list[str]) -> int:
    pid_file, command = argv[0], argv[1:]
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    code = subprocess.call(command)
    if code != 0:
        return code
    with open(pid_file) as f:
        pid = int(f.read().strip())
    return wait_for(pid, forward_signals=False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
