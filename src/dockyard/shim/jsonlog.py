"""Docker's json-file log driver: one JSON object per line, rotated by size.

    {"log":"hello\n","stream":"stdout","time":"2026-11-23T16:00:00.123456789Z"}

A line longer than 16 KiB is split into several entries, as Docker does, and a partial line
is written when the stream closes.
"""

from __future__ import annotations

import json
import os
import time

MAX_LINE = 16 * 1024


def timestamp(now: float | None = None) -> str:
    """RFC 3339 with nanoseconds, as Docker writes it."""
    ns = time.time_ns() if now is None else int(now * 1e9)
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def parse_size(text: str) -> int:
    """Docker's max-size: "10m", "1g", "512k", "100" (bytes)."""
    text = text.strip().lower().removesuffix("b")
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


class JsonFileLog:
    def __init__(self, path: str, max_size: int = 0, max_file: int = 1):
        self.path = path
        self.max_size = max_size  # 0: never rotate
        self.max_file = max(1, max_file)
        self._pending = {"stdout": b"", "stderr": b""}
        self._file = open(path, "ab")  # noqa: SIM115 - held for the container's lifetime
        self._size = self._file.tell()

    def write(self, stream: str, data: bytes) -> None:
        buffer = self._pending[stream] + data
        while True:
            newline = buffer.find(b"\n")
            if newline < 0 and len(buffer) < MAX_LINE:
                break
            cut = newline + 1 if 0 <= newline < MAX_LINE else MAX_LINE
            self._entry(stream, buffer[:cut])
            buffer = buffer[cut:]
        self._pending[stream] = buffer

    def close(self) -> None:
        for stream, rest in self._pending.items():
            if rest:
                self._entry(stream, rest)
        self._pending = {"stdout": b"", "stderr": b""}
        self._file.close()

    def _entry(self, stream: str, chunk: bytes) -> None:
        line = json.dumps(
            {"log": chunk.decode("utf-8", "replace"), "stream": stream, "time": timestamp()}
        ).encode()
        line += b"\n"
        if self.max_size and self._size + len(line) > self.max_size and self._size > 0:
            self._rotate()
        self._file.write(line)
        self._file.flush()
        self._size += len(line)

    def _rotate(self) -> None:
        self._file.close()
        if self.max_file == 1:
            os.truncate(self.path, 0)
        else:
            for index in range(self.max_file - 1, 0, -1):
                older = f"{self.path}.{index}"
                newer = self.path if index == 1 else f"{self.path}.{index - 1}"
                if os.path.exists(newer):
                    os.replace(newer, older)
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._size = 0
