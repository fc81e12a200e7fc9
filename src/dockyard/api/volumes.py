"""Volume routes: create, list, inspect, remove, prune."""

from __future__ import annotations

from aiohttp import web

from dockyard.api.app import Routes, engine_of, json_response
from dockyard.api.params import check_types, filters, flag, json_body

_CREATE_BODY = {"Name": str, "Driver": str, "DriverOpts": dict, "Labels": dict}


async def create(request: web.Request) -> web.Response:
    body = await json_body(request, required=False)
    check_types(body, _CREATE_BODY, "VolumeCreateBody.")
    volume = engine_of(request).volumes.create(
        body.get("Name"), body.get("Driver"), body.get("DriverOpts"), body.get("Labels")
    )
    return json_response(volume, status=201)


async def list_volumes(request: web.Request) -> web.Response:
    volumes = engine_of(request).volumes.list(filters(request))
    return json_response({"Volumes": volumes, "Warnings": None})


async def inspect(request: web.Request) -> web.Response:
    return json_response(engine_of(request).volumes.get(request.match_info["name"]))


async def remove(request: web.Request) -> web.Response:
    engine_of(request).volumes.remove(request.match_info["name"], force=flag(request, "force"))
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    return json_response(engine_of(request).volumes.prune(filters(request)))


def register(routes: Routes) -> None:
    routes.add("POST", "/volumes/create", create)
    routes.add("GET", "/volumes", list_volumes)
    routes.add("POST", "/volumes/prune", prune)
    routes.add("GET", "/volumes/{name}", inspect)
    routes.add("DELETE", "/volumes/{name}", remove)
