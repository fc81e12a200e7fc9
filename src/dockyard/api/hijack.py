"""Taking over an HTTP connection for a raw stream (attach, exec start), as dockerd does.

aiohttp keeps parsing a connection as HTTP; for the hijack we pause it, duplicate the socket
and run our own asyncio stream on the duplicate. Our protocol supports half-close: when the
client shuts its side down (end of stdin), output keeps flowing until the process exits.
"""

from __future__ import annotations

import asyncio
import os
import socket

from aiohttp import web

from dockyard.engine.engine import API_VERSION, VERSION

RAW_STREAM = "application/vnd.docker.raw-stream"


def wants_upgrade(request: web.Request) -> bool:
    return "upgrade" in request.headers.get("Connection", "").lower()


async def hijack(request: web.Request) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Answer 101 UPGRADED (or 200 for a client that did not ask to upgrade) and return the
    connection as a raw stream."""
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("client went away")
    sock = transport.get_extra_info("socket")
    if transport.get_extra_info("sslcontext") is not None:
        reader, writer = _over_aiohttp(request, transport)
    else:
        transport.pause_reading()
        raw = socket.socket(fileno=os.dup(sock.fileno()))
        if raw.family == socket.AF_UNIX:
            reader, writer = await asyncio.open_unix_connection(sock=raw, limit=2**20)
        else:
            reader, writer = await asyncio.open_connection(sock=raw, limit=2**20)
    if wants_upgrade(request):
        status = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
    else:
        status = "HTTP/1.1 200 OK\r\n"
    headers = (
        f"{status}Content-Type: {RAW_STREAM}\r\nApi-Version: {API_VERSION}\r\n"
        f"Docker-Experimental: false\r\nOstype: linux\r\nServer: Docker/{VERSION} (linux)\r\n\r\n"
    )
    writer.write(headers.encode())
    await writer.drain()
    return reader, writer


class _RawParser:
    """Receives what aiohttp reads after the headers on a hijacked TLS connection."""

    def __init__(self, reader: asyncio.StreamReader):
        self.reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()


class _TransportWriter:
    """The writing half of a hijacked TLS connection (TLS cannot half-close)."""

    def __init__(self, transport: asyncio.Transport):
        self.transport = transport

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        return None

    def close(self) -> None:
        self.transport.close()


def _over_aiohttp(request: web.Request, transport: asyncio.Transport):
    """A TLS socket cannot be duplicated: keep aiohttp's transport and take its input."""
    reader = asyncio.StreamReader(limit=2**20)
    request.protocol.set_parser(_RawParser(reader))
    return reader, _TransportWriter(transport)


def finish(request: web.Request, writer: asyncio.StreamWriter) -> web.Response:
    """Close the hijacked stream and aiohttp's side of the connection."""
    writer.close()
    if request.transport is not None:
        request.transport.close()
    return web.Response()


DEFAULT_DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q


def parse_detach_keys(text: str | None) -> bytes:
    """Docker's --detach-keys: "ctrl-p,ctrl-q", "a", ctrl-@ ctrl-[ and friends."""
    if text is None:
        return DEFAULT_DETACH_KEYS
    if not text:
        return b""
    keys = bytearray()
    for key in text.split(","):
        key = key.strip()
        if key.startswith("ctrl-") and len(key) == 6:
            char = key[5].lower()
            if "a" <= char <= "z":
                keys.append(ord(char) - ord("a") + 1)
            elif char in "@[\\]^_":
                keys.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[char])
            else:
                raise ValueError(f"Invalid detach keys ({text}) provided")
        elif len(key) == 1:
            keys.append(ord(key))
        else:
            raise ValueError(f"Invalid detach keys ({text}) provided")
    return bytes(keys)


async def pump_stdin(
    client: asyncio.StreamReader, target: asyncio.StreamWriter, detach_keys: bytes
) -> bool:
    """Copy the client's input to the process; True if the user typed the detach keys."""
    matched = 0
    while True:
        data = await client.read(65536)
        if not data:
            if target.can_write_eof():
                target.write_eof()
            return False
        if detach_keys:
            out = bytearray()
            for byte in data:
                if byte == detach_keys[matched]:
                    matched += 1
                    if matched == len(detach_keys):
                        if out:
                            target.write(bytes(out))
                        return True
                    continue
                if matched:
                    out += detach_keys[:matched]
                    matched = 0
                out.append(byte)
            data = bytes(out)
        if data:
            target.write(data)
            await target.drain()


async def pump_output(source: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
    while True:
        data = await source.read(65536)
        if not data:
            return
        client.write(data)
        await client.drain()


async def run_session(output, stdin_pump=None) -> bool:
    """Run an attach-like session: `output` (a coroutine copying the process's output to the
    client) ends it; `stdin_pump` (copying the client's input) ends it only when it returns
    True (the detach keys), not at the plain end of input. True if the client detached."""
    out_task = asyncio.create_task(output)
    tasks = {out_task}
    if stdin_pump is not None:
        tasks.add(asyncio.create_task(stdin_pump))
    try:
        while tasks:
            done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if out_task in done:
                out_task.result()
                return False
            if any(t.result() for t in done if not t.exception()):
                return True
        return False
    finally:
        for task in tasks:
            task.cancel()
