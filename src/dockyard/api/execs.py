"""Exec routes: create, start (hijacked stream or detached), resize, inspect."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from dockyard.api import hijack
from dockyard.api.app import Routes, engine_of, json_response
from dockyard.api.params import integer, json_body
from dockyard.engine import execs
from dockyard.engine.errors import InvalidArgument


async def create(request: web.Request) -> web.Response:
    body = await json_body(request)
    exec_id = execs.create(engine_of(request), request.match_info["id"], body)
    return json_response({"Id": exec_id}, status=201)


async def start(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    body = await json_body(request, required=False)
    exec_id = request.match_info["id"]
    session = execs.get(engine, exec_id)
    try:
        detach_keys = hijack.parse_detach_keys(session.config["DetachKeys"] or None)
    except ValueError as error:
        raise InvalidArgument(str(error)) from None
    tty = body.get("Tty")
    detach = bool(body.get("Detach"))
    started = await execs.start(
        engine, exec_id, detach=detach, tty=tty if isinstance(tty, bool) else None
    )
    if detach:
        return web.Response(status=200)
    client_reader, client_writer = await hijack.hijack(request)
    try:
        await _stream(started, client_reader, client_writer, detach_keys)
    except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError):
        pass  # the client left; the process runs on
    return hijack.finish(request, client_writer)


async def _stream(started: execs.Started, client_reader, client_writer, detach_keys) -> None:
    """Output to the client until the process is done; the client's input to the process."""

    async def output() -> None:
        async for chunk in started.output:
            client_writer.write(chunk)
            await client_writer.drain()
        await started.wait()  # the exit code is recorded before the client inspects

    stdin = started.stdin
    try:
        await hijack.run_session(
            output(),
            hijack.pump_stdin(client_reader, stdin, detach_keys) if stdin is not None else None,
        )
    finally:
        if started.stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                started.stdin.close()


async def resize(request: web.Request) -> web.Response:
    height = integer(request, "h", 0) or 0
    width = integer(request, "w", 0) or 0
    await execs.resize(engine_of(request), request.match_info["id"], height, width)
    return web.Response(status=200)


async def inspect(request: web.Request) -> web.Response:
    return json_response(execs.inspect(engine_of(request), request.match_info["id"]))


def register(routes: Routes) -> None:
    routes.add("POST", "/containers/{id}/exec", create)
    routes.add("POST", "/exec/{id}/start", start)
    routes.add("POST", "/exec/{id}/resize", resize)
    routes.add("GET", "/exec/{id}/json", inspect)
