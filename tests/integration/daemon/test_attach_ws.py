"""Attach over a websocket (GET /containers/{id}/attach/ws), as Docker serves it."""

from __future__ import annotations

import asyncio

import aiohttp


async def _session(daemon, container_id: str, query: str) -> bytes:
    connector = aiohttp.UnixConnector(path=str(daemon.socket))
    async with aiohttp.ClientSession(connector=connector) as session:
        url = f"http://d/v1.41/containers/{container_id}/attach/ws?{query}"
        async with session.ws_connect(url) as socket:
            await socket.send_bytes(b"over the websocket\n")
            received = b""
            async for message in socket:
                if message.type == aiohttp.WSMsgType.BINARY:
                    received += message.data
                    if b"over the websocket" in received:
                        break
            return received


def test_websocket_attach_carries_stdin_and_raw_output(daemon):
    created = daemon.docker("create", "-i", "--name", "wscat", "busybox", "cat")
    assert created.returncode == 0, created.stderr
    assert daemon.docker("start", "wscat").returncode == 0
    try:
        received = asyncio.run(
            asyncio.wait_for(_session(daemon, "wscat", "stream=1&stdin=1&stdout=1&stderr=1"), 30)
        )
        # Raw bytes: no 8-byte multiplexing header in front of the echo.
        assert received == b"over the websocket\n"
    finally:
        daemon.docker("rm", "-f", "wscat")
