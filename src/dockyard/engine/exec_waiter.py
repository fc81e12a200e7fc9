"""Waits for a process `<runtime> exec -d` leaves behind (a TTY exec), as its subreaper.

Usage: python -m dockyard.engine.exec_waiter PID_FILE RUNTIME_ARGV...

The detached runtime exits once the process runs; being a child subreaper we inherit the
process and exit with its status (shell style), or with the runtime's status if it failed.
"""

from __future__ import annotations

import os
import subprocess
import sys

from dockyard.runtime import linux


def main(argv: list[str]) -> int:
    pid_file, command = argv[0], argv[1:]
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    code = subprocess.call(command)
    if code != 0:
        return code
    with open(pid_file) as f:
        pid = int(f.read().strip())
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if reaped == pid:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
