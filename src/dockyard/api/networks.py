"""Network routes: list, inspect, create, connect, disconnect, remove, prune."""

from __future__ import annotations

from aiohttp import web

from dockyard.api.app import Routes, engine_of, json_response
from dockyard.api.params import check_types, filters, json_body

_CREATE_BODY = {
    "Name": str,
    "CheckDuplicate": bool,
    "Driver": str,
    "Internal": bool,
    "Attachable": bool,
    "Ingress": bool,
    "IPAM": dict,
    "EnableIPv6": bool,
    "Options": dict,
    "Labels": dict,
}
_CONNECT_BODY = {"Container": str, "EndpointConfig": dict, "Force": bool}


async def list_networks(request: web.Request) -> web.Response:
    return json_response(engine_of(request).networks.list(filters(request)))


async def inspect(request: web.Request) -> web.Response:
    return json_response(engine_of(request).networks.inspect(request.match_info["id"]))


async def create(request: web.Request) -> web.Response:
    body = await json_body(request)
    check_types(body, _CREATE_BODY, "NetworkCreateRequest.")
    network = engine_of(request).networks.create(body)
    return json_response({"Id": network["Id"], "Warning": ""}, status=201)


async def connect(request: web.Request) -> web.Response:
    body = await json_body(request)
    check_types(body, _CONNECT_BODY, "NetworkConnectRequest.")
    await engine_of(request).endpoints.connect(
        request.match_info["id"], body.get("Container") or "", body.get("EndpointConfig")
    )
    return web.Response(status=200)


async def disconnect(request: web.Request) -> web.Response:
    body = await json_body(request)
    check_types(body, _CONNECT_BODY, "NetworkDisconnectRequest.")
    await engine_of(request).endpoints.disconnect(
        request.match_info["id"], body.get("Container") or "", bool(body.get("Force"))
    )
    return web.Response(status=200)


async def remove(request: web.Request) -> web.Response:
    engine_of(request).networks.remove(request.match_info["id"])
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    return json_response(engine_of(request).networks.prune(filters(request)))


def register(routes: Routes) -> None:
    routes.add("GET", "/networks", list_networks)
    routes.add("POST", "/networks/create", create)
    routes.add("POST", "/networks/prune", prune)
    routes.add("GET", "/networks/{id}", inspect)
    routes.add("DELETE", "/networks/{id}", remove)
    routes.add("POST", "/networks/{id}/connect", connect)
    routes.add("POST", "/networks/{id}/disconnect", disconnect)
