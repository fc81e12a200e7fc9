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


async def request(directory: str, op: str, *args: int) -> dict:
    """One request, one answer. Raises ShimGone when the shim does not answer."""
    reader, writer = await open_connection(directory)
    try:
        writer.write(protocol.request(op, *args))
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
        writer.write(protocol.request("wait"))
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
    writer.write(protocol.request("attach", stdin, stdout, stderr))
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


class ShimLauncher:
    """Starts monitors through the shim zygote (dockyard.shim.zygote), spawning it on first
    use and again if it died."""

    def __init__(self, socket_path: str, log_path: str, monitor: str):
        self.socket_path = socket_path
        self.monitor = monitor
        self.log_path = log_path
        self._zygote: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def _spawn(self) -> None:
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        with open(self.log_path, "ab") as log:
            self._zygote = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "dockyard.shim",
                "--zygote",
                self.socket_path,
                str(os.getpid()),
                self.monitor,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        for _ in range(500):
            if os.path.exists(self.socket_path):
                return
            if self._zygote.returncode is not None:
                break
            await asyncio.sleep(0.01)
        raise EngineError(f"the shim zygote did not start (see {self.log_path})")

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self._lock:
            if self._zygote is None or self._zygote.returncode is not None:
                await self._spawn()
            try:
                return await asyncio.open_unix_connection(self.socket_path)
            except OSError:
                await self._spawn()
                return await asyncio.open_unix_connection(self.socket_path)

    async def launch(self, directory: str, config: dict) -> int:
        """Start a monitor for the container in `directory`; returns its init's pid."""
        with open(os.path.join(directory, "shim.json"), "w") as f:
            json.dump(config, f)
        reader, writer = await self._connect()
        try:
            writer.write(protocol.encode({"dir": directory}))
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
        if not line:
            with open(os.path.join(directory, "shim.log"), "rb") as f:
                detail = f.read()[-2000:].decode(errors="replace").strip()
            raise EngineError(f"shim failed to start: {detail or 'no answer'}")
        answer = protocol.decode(line)
        if "error" in answer:
            raise EngineError(answer["error"])
        return int(answer["pid"])

    def stop(self) -> None:
        if self._zygote is not None and self._zygote.returncode is None:
            self._zygote.terminate()
