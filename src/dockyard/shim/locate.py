"""Where the monitor program (dockyard-shim, built from shim/c by `make install`) is."""

from __future__ import annotations

import os
import shutil
import sys

MONITOR = "dockyard-shim"


def monitor_binary() -> str:
    """Next to the interpreter (the virtualenv's bin/), else on PATH."""
    search = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    found = shutil.which(MONITOR, path=search)
    if found is None:
        raise FileNotFoundError(
            f"{MONITOR} not found next to {sys.executable} or on PATH: "
            "build it with `make install` (needs gcc)"
        )
    return found
