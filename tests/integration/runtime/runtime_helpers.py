"""What the runtime tests share besides fixtures: scripts run in containers, and turning what
a container printed into something that compares equal across runtimes and runs.

Only what must differ between two runs of one bundle is normalised away: container ids,
cgroup path names, mount ids, anonymous device numbers and peer-group numbers.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

# Sections of what a process sees, separated by "--- name" lines.
REPORT = "; ".join(
    [
        "echo '--- status'",
        "grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/self/status",
        "echo '--- mountinfo'",
        "cat /proc/self/mountinfo",
        "echo '--- hostname'",
        "hostname",
        "echo '--- id'",
        "id",
        "echo '--- limits'",
        "cat /proc/self/limits",
        "echo '--- cgroup'",
        "cat /proc/self/cgroup",
        "echo '--- umask'",
        "umask",
        "echo '--- cwd'",
        "pwd",
        "echo '--- env'",
        "env | sort",
    ]
)


def sections(text: str) -> dict[str, list[str]]:
    """REPORT's output by section name."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("--- "):
            current = line[4:]
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return out


class _Numbering:
    """Gives each distinct value the next number, in order of first appearance."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.seen: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        if value not in self.seen:
            self.seen[value] = f"{self.prefix}{len(self.seen)}"
        return self.seen[value]


def normalize_mountinfo(lines: list[str], replacements: dict[str, str]) -> list[str]:
    """mountinfo with run-specific numbers replaced by their order of appearance.

    Mount ids become m0, m1...; a parent outside the list (the host's) becomes "outside";
    anonymous devices (major 0) anon0...; shared/master peer groups peer0...
    """
    ids = {line.split()[0]: f"m{index}" for index, line in enumerate(lines)}
    anon = _Numbering("anon")
    peers = _Numbering("peer")
    out = []
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        fields[0] = ids[fields[0]]
        fields[1] = ids.get(fields[1], "outside")
        major, _, _ = fields[2].partition(":")
        if major == "0":
            fields[2] = anon(fields[2])
        for index in range(6, len(fields)):
            tag, sep, number = fields[index].partition(":")
            if sep:
                fields[index] = f"{tag}:{peers(number)}"
        out.append(replace_all(" ".join(fields) + " - " + right, replacements))
    return out


def replace_all(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


def normalize_report(stdout: str, container_id: str, cgroup: str) -> dict[str, list[str]]:
    """REPORT's sections with the run-specific parts replaced."""
    replacements = {cgroup: "<cgroup>", container_id: "<id>"}
    found = sections(stdout)
    normalized = {
        name: [replace_all(line, replacements) for line in lines] for name, lines in found.items()
    }
    if "mountinfo" in found:
        normalized["mountinfo"] = normalize_mountinfo(found["mountinfo"], replacements)
    return normalized


def wait_until(check: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def receive_pty_master(server: socket.socket, timeout: float = 10) -> int:
    """Accept one console-socket connection and take the pty master out of its message."""
    server.settimeout(timeout)
    connection, _ = server.accept()
    with connection:
        connection.settimeout(timeout)
        _, fds, _, _ = socket.recv_fds(connection, 4096, 1)
    assert len(fds) == 1, "the console socket carried no file descriptor"
    return fds[0]
