"""Start a local daemon when the user set no host, is root, and nothing answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from dockyard.client.transport import Host

LOG_CANDIDATES = (Path("/var/log/dockyard.log"), Path("/var/lib/dockyard/dockyard.log"))


def should_autostart(configured: str | None, euid: int) -> bool:
    """Only the default daemon, and only for root: any explicit host means "use that one"."""
    return configured is None and euid == 0


def log_path() -> Path:
    for candidate in LOG_CANDIDATES:
        try:
            candidate.parent.mkdir(parents=True, exist_ok=True)
            with open(candidate, "ab"):
                return candidate
        except OSError:
            continue
    return Path(os.devnull)


def start_daemon(
    host: Host, log: Path, extra_args: list[str] | None = None, timeout: float = 30
) -> subprocess.Popen:
    """`dockyard daemon` in its own session, detached from this terminal, then wait for it."""
    command = [sys.executable, "-m", "dockyard.cli.main", "daemon", "-H", f"unix://{host.address}"]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [*command, *(extra_args or [])],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the dockyard daemon exited with status {process.returncode}; see {log}"
            )
        if _answers(host):
            return process
        time.sleep(0.05)
    raise RuntimeError(f"the dockyard daemon did not answer within {timeout:.0f}s; see {log}")


def _answers(host: Host) -> bool:
    try:
        sock = host.connect(timeout=1)
    except OSError:
        return False
    try:
        sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False
    finally:
        sock.close()
