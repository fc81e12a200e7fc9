"""Reading a container's json-file log: tail, since/until, timestamps, follow."""

from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from collections.abc import AsyncIterator, Callable

from dockyard.engine.timefmt import parse_rfc3339

FOLLOW_POLL_SECONDS = 0.05


def parse_size(text: str) -> int:
    """Docker's json-file max-size: "10m", "1g", "512k", "100" (bytes)."""
    text = text.strip().lower().removesuffix("b")
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def _files(path: str) -> list[str]:
    """Rotated files oldest first, then the live one."""
    rotated = []
    index = 1
    while os.path.exists(f"{path}.{index}"):
        rotated.append(f"{path}.{index}")
        index += 1
    return [*reversed(rotated), path]


def _parse(line: bytes) -> tuple[str, bytes, str] | None:
    try:
        entry = json.loads(line)
        return entry["stream"], entry["log"].encode(), entry["time"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a line being written, or garbage: skip it


async def read(
    path: str,
    *,
    tail: int | None,
    since: float,
    until: float | None,
    follow: bool,
    running: Callable[[], bool],
) -> AsyncIterator[tuple[str, bytes, str]]:
    """(stream, payload, RFC 3339 time) for each entry wanted."""
    if not path:
        return
    entries: deque | list = deque(maxlen=tail) if tail is not None else []
    offset = 0
    for name in _files(path):
        try:
            with open(name, "rb") as f:
                for raw in f:
                    entry = _parse(raw)
                    if entry and _wanted(entry, since, until):
                        entries.append(entry)
                if name == path:
                    offset = f.tell()
        except FileNotFoundError:
            continue
    if tail == 0:
        entries.clear()
    for entry in entries:
        yield entry
    if not follow:
        return
    partial = b""
    while True:
        alive = running()
        try:
            with open(path, "rb") as f:
                if os.fstat(f.fileno()).st_size < offset:
                    offset = 0  # rotated underneath us
                f.seek(offset)
                chunk = f.read()
                offset = f.tell()
        except FileNotFoundError:
            chunk = b""
        data = partial + chunk
        *lines, partial = data.split(b"\n")
        for raw in lines:
            entry = _parse(raw)
            if entry and _wanted(entry, since, until):
                yield entry
        if not alive:
            return
        await asyncio.sleep(FOLLOW_POLL_SECONDS)


def _wanted(entry: tuple[str, bytes, str], since: float, until: float | None) -> bool:
    if not since and until is None:
        return True
    moment = parse_rfc3339(entry[2])
    return moment >= since and (until is None or moment <= until)
