"""Blocking file objects over aiohttp's async streams, for work run in a thread.

Archives (load, import, save, export) are read and written by blocking code run with
asyncio.to_thread; these adapters let that code read the request body and write the response
body chunk by chunk, each call waiting on the event loop, so nothing is held whole in memory.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from typing import BinaryIO

from aiohttp import StreamReader, web

_FLUSH_AT = 256 * 1024
log = logging.getLogger("dockyard.api")


class BodyReader(io.RawIOBase):
    """The request body as a blocking, readable stream (for use off the event loop)."""

    def __init__(self, body: StreamReader, loop: asyncio.AbstractEventLoop) -> None:
        self._body = body
        self._loop = loop

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return self._wait(self._body.read(-1))
        return self._wait(self._body.read(n)) if n else b""

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _wait(self, coroutine) -> bytes:  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


class ResponseWriter(io.RawIOBase):
    """A prepared streaming response as a blocking, writable stream, buffered so that a
    write to the socket carries a useful amount."""

    def __init__(self, response: web.StreamResponse, loop: asyncio.AbstractEventLoop) -> None:
        self._response = response
        self._loop = loop
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[no-untyped-def]
        self._buffer += data
        if len(self._buffer) >= _FLUSH_AT:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buffer:
            chunk, self._buffer = bytes(self._buffer), bytearray()
            write = self._response.write(chunk)
            asyncio.run_coroutine_threadsafe(write, self._loop).result()


async def stream_out(
    request: web.Request, content_type: str, produce: Callable[[BinaryIO], None]
) -> web.StreamResponse:
    """Answer with a chunked body that `produce(out)` writes from a thread."""
    response = web.StreamResponse(headers={"Content-Type": content_type})
    response.enable_chunked_encoding()
    await response.prepare(request)
    out = ResponseWriter(response, asyncio.get_running_loop())

    def run() -> None:
        produce(out)
        out.flush()

    try:
        await asyncio.to_thread(run)
    except Exception as error:  # the status is sent: cut the stream short, as dockerd does
        log.error("%s %s failed mid-stream: %s", request.method, request.path, error)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response
