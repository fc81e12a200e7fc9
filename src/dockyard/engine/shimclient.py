"""Talking to a container's shim over its socket, from the daemon's event loop."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from dockyard.engine.errors import Conflict, EngineError
from dockyard.shim import protocol


class ShimGone(EngineError):
    """The shim is not running (the container has exited, or the shim died)."""


def _socket_path(directory: str) -> tuple[int, str]:
    # sun_path holds 108 bytes; reach the socket through a short /proc/self/fd path.
    fd = os.open(directory, os.O_PATH | os.O_CLOEXEC)
    return fd, f"/proc/self/fd/{fd}/shim.sock"


async def open_connection(directory: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    fd, path = _socket_path(directory)
    try:
        return await asyncio.open_unix_connection(path, limit=2**20)
    except OSError as error:
        raise ShimGone(f"shim of {directory} is gone: {error}") from None
    finally:
        os.close(fd)


async def request(directory: str, op: str, **fields) -> dict:
    """One request, one answer. Raises ShimGone when the shim does not answer."""
    reader, writer = await open_connection(directory)
    try:
        writer.write(protocol.encode({"op": op, **fields}))
        await writer.drain()
        line = await reader.readline()
    except OSError as error:  # reset: the shim exited before it read our request
        raise ShimGone(f"shim of {directory} went away: {error}") from None
    finally:
        writer.close()
    if not line:
        raise ShimGone(f"shim of {directory} closed the connection")
    answer = protocol.decode(line)
    if "error" in answer:
        raise Conflict(answer["error"])
    return answer


async def wait_exit(directory: str) -> dict:
    """Block until the container exits; its exit record."""
    reader, writer = await open_connection(directory)
    try:
        writer.write(protocol.encode({"op": "wait"}))
        await writer.drain()
        line = await reader.readline()
    except OSError as error:
        raise ShimGone(f"shim of {directory} went away: {error}") from None
    finally:
        writer.close()
    if not line:
        raise ShimGone(f"shim of {directory} went away before the container exited")
    return protocol.decode(line)


async def attach(
    directory: str, stdin: bool, stdout: bool, stderr: bool
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await open_connection(directory)
    writer.write(
        protocol.encode({"op": "attach", "stdin": stdin, "stdout": stdout, "stderr": stderr})
    )
    await writer.drain()
    line = await reader.readline()
    if not line:
        writer.close()
        raise ShimGone(f"shim of {directory} refused to attach")
    answer = protocol.decode(line)
    if "error" in answer:
        writer.close()
        raise Conflict(answer["error"])
    return reader, writer


async def launch(directory: str, config: dict) -> int:
    """Start a shim for the container in `directory`; returns the container's init pid."""
    shim_json = os.path.join(directory, "shim.json")
    with open(shim_json, "w") as f:
        json.dump(config, f)
    log = open(os.path.join(directory, "shim.log"), "ab")  # noqa: SIM115 - handed to the shim
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dockyard.shim",
            directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    finally:
        log.close()
    assert process.stdout is not None
    line = await process.stdout.readline()
    await process.wait()  # the launcher exits at once; the monitor lives on, re-parented
    if not line:
        with open(os.path.join(directory, "shim.log"), "rb") as f:
            detail = f.read()[-2000:].decode(errors="replace").strip()
        raise EngineError(f"shim failed to start: {detail or 'no answer'}")
    answer = protocol.decode(line)
    if "error" in answer:
        raise EngineError(answer["error"])
    return int(answer["pid"])
