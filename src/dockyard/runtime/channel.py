"""The runtime <-> container-init conversation: one JSON object per line over a socketpair."""

from __future__ import annotations

import json
import os

from dockyard.runtime.errors import OCIError


class Channel:
    """One end of a pair of pipes (pipes rather than a socketpair: importing socket costs
    milliseconds on every runtime start)."""

    def __init__(self, read_fd: int, write_fd: int):
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._buffer = b""

    @staticmethod
    def pair() -> tuple[Channel, Channel]:
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        return Channel(up_r, down_w), Channel(down_r, up_w)

    def send(self, kind: str, **fields: object) -> None:
        os.write(self.write_fd, json.dumps({"type": kind, **fields}).encode() + b"\n")

    def fail(self, message: str) -> None:
        self.send("error", message=message)

    def recv(self) -> dict:
        while b"\n" not in self._buffer:
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                raise OCIError("container init exited before it was ready")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def expect(self, kind: str) -> dict:
        message = self.recv()
        if message["type"] == "error":
            raise OCIError(message["message"])
        if message["type"] != kind:
            raise OCIError(f"container init said {message['type']!r}, expected {kind!r}")
        return message

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass  # already closed by an earlier close()
