"""What the daemon and a container's monitor say to each other over <container dir>/shim.sock
(the monitor's side is shim/c/monitor.c, which documents every request).

Every connection opens with one request line of words from the daemon, answered by one JSON
line. After an "attach" answer the connection carries the container's streams: output in
Docker's 8-byte frames (stream, 0, 0, 0, big-endian length; raw with a TTY) and stdin as raw
bytes from the daemon, a half-close meaning end of input. The zygote and the launcher also
speak JSON lines.
"""

from __future__ import annotations

import json
import struct

STDIN, STDOUT, STDERR = 0, 1, 2
_HEADER = struct.Struct(">BxxxI")
HEADER_SIZE = _HEADER.size


def frame(stream: int, payload: bytes) -> bytes:
    return _HEADER.pack(stream, len(payload)) + payload


def parse_header(header: bytes) -> tuple[int, int]:
    """(stream, payload length) of an 8-byte frame header."""
    return _HEADER.unpack(header)


def request(op: str, *args: int | bool) -> bytes:
    """A request line for the monitor: the operation, then numbers (flags as 0 or 1)."""
    return " ".join([op, *(str(int(arg)) for arg in args)]).encode() + b"\n"


def encode(message: dict) -> bytes:
    return json.dumps(message).encode() + b"\n"


def decode(line: bytes) -> dict:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a shim message is a JSON object")
    return message
