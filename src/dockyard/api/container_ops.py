"""Container routes beside the lifecycle: pause, unpause, rename, update, top, changes, archive,
stats, prune."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from dockyard.api.app import Routes, engine_of, json_response
from dockyard.api.params import filters, flag, json_body
from dockyard.engine import archives, operations, stats
from dockyard.engine.errors import InvalidArgument

_STAT_HEADER = "X-Docker-Container-Path-Stat"


async def pause(request: web.Request) -> web.Response:
    await operations.pause(engine_of(request), request.match_info["id"])
    return web.Response(status=204)


async def unpause(request: web.Request) -> web.Response:
    await operations.unpause(engine_of(request), request.match_info["id"])
    return web.Response(status=204)


async def rename(request: web.Request) -> web.Response:
    operations.rename(engine_of(request), request.match_info["id"], request.query.get("name", ""))
    return web.Response(status=204)


async def update(request: web.Request) -> web.Response:
    body = await json_body(request)
    warnings = await operations.update(engine_of(request), request.match_info["id"], body)
    return json_response({"Warnings": warnings})


async def top(request: web.Request) -> web.Response:
    result = await operations.top(
        engine_of(request), request.match_info["id"], request.query.get("ps_args", "")
    )
    return json_response(result)


async def changes(request: web.Request) -> web.Response:
    return json_response(await operations.changes(engine_of(request), request.match_info["id"]))


async def prune(request: web.Request) -> web.Response:
    return json_response(await operations.prune(engine_of(request), filters(request)))


def _archive_path(request: web.Request) -> str:
    path = request.query.get("path", "")
    if not path:
        raise InvalidArgument("bad parameter: path cannot be empty")
    return path


async def archive_head(request: web.Request) -> web.Response:
    document = await archives.stat_path(
        engine_of(request), request.match_info["id"], _archive_path(request)
    )
    return web.Response(
        status=200,
        headers={_STAT_HEADER: archives.encode_stat(document), "Content-Type": "application/json"},
    )


async def archive_get(request: web.Request) -> web.StreamResponse:
    document, tar = await archives.read_archive(
        engine_of(request), request.match_info["id"], _archive_path(request)
    )
    with tar:
        response = web.StreamResponse(
            headers={
                _STAT_HEADER: archives.encode_stat(document),
                "Content-Type": "application/x-tar",
            }
        )
        await response.prepare(request)
        try:
            while chunk := await asyncio.to_thread(tar.read, 1 << 16):
                await response.write(chunk)
        except ConnectionResetError:
            pass
    return response


async def archive_put(request: web.Request) -> web.Response:
    await archives.write_archive(
        engine_of(request),
        request.match_info["id"],
        _archive_path(request),
        request.content.iter_chunked(1 << 16),
        flag(request, "noOverwriteDirNonDir"),
    )
    return web.Response(status=200)


async def container_stats(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    follow = flag(request, "stream", True)
    one_shot = flag(request, "one-shot")
    if one_shot and follow:
        raise InvalidArgument("cannot have stream=true and one-shot=true")
    samples = stats.stream(engine, request.match_info["id"], follow=follow, one_shot=one_shot)
    first = await anext(samples)  # a missing container is a 404, before any header
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    if follow:
        response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        await response.write(json.dumps(first).encode() + b"\n")
        async for sample in samples:
            await response.write(json.dumps(sample).encode() + b"\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        await samples.aclose()
    return response


def register(routes: Routes) -> None:
    routes.add("POST", "/containers/{id}/pause", pause)
    routes.add("POST", "/containers/{id}/unpause", unpause)
    routes.add("POST", "/containers/{id}/rename", rename)
    routes.add("POST", "/containers/{id}/update", update)
    routes.add("GET", "/containers/{id}/top", top)
    routes.add("GET", "/containers/{id}/changes", changes)
    routes.add("GET", "/containers/{id}/stats", container_stats)
    routes.add("HEAD", "/containers/{id}/archive", archive_head)
    routes.add("GET", "/containers/{id}/archive", archive_get)
    routes.add("PUT", "/containers/{id}/archive", archive_put)
    routes.add("POST", "/containers/prune", prune)
