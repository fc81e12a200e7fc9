"""System routes: _ping, version, info, events, system df, auth (login)."""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from dockyard.api.app import Routes, engine_of, error_response, json_response
from dockyard.api.params import check_types, filters, json_body
from dockyard.distribution import auth as registry_auth
from dockyard.engine.errors import InvalidArgument
from dockyard.engine.timefmt import parse_timestamp
from dockyard.image.reference import parse_normalized

_PING_HEADERS = {
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
    "Builder-Version": "1",
}


async def ping(request: web.Request) -> web.Response:
    if request.method == "HEAD":
        return web.Response(headers={**_PING_HEADERS, "Content-Length": "0"})
    return web.Response(text="OK", content_type="text/plain", headers=_PING_HEADERS)


async def version(request: web.Request) -> web.Response:
    return json_response(engine_of(request).version())


async def info(request: web.Request) -> web.Response:
    return json_response(engine_of(request).info())


async def login(request: web.Request) -> web.Response:
    body = await json_body(request)
    check_types(body, {"username": str, "password": str, "serveraddress": str}, "AuthConfig.")
    try:
        result = await registry_auth.login(
            body.get("serveraddress") or "", body.get("username") or "", body.get("password") or ""
        )
    except registry_auth.LoginFailed as error:
        return error_response(error.status, str(error))
    return json_response({"IdentityToken": result.identity_token, "Status": result.status})


def _image_names(event: dict) -> set[str]:
    """What an image filter matches, as dockerd: the actor's ID and image name, each also
    without its tag (`image=busybox` matches busybox:latest)."""
    actor = event["Actor"]
    name = actor["Attributes"].get("name" if event["Type"] == "image" else "image") or ""
    names = {actor["ID"], name}
    for candidate in list(names):
        try:
            names.add(parse_normalized(candidate).familiar_name)
        except ValueError:
            pass
    return names


def _event_matches(event: dict, wanted: dict[str, list[str]]) -> bool:
    actor = event["Actor"]
    attributes = actor["Attributes"]
    checks = {
        "type": lambda v: event["Type"] == v,
        "event": lambda v: event["Action"] == v or event["Action"].startswith(v + ":"),
        "container": lambda v: (
            event["Type"] == "container"
            and (actor["ID"].startswith(v) or attributes.get("name") == v)
        ),
        "image": lambda v: v in _image_names(event),
        "volume": lambda v: event["Type"] == "volume" and actor["ID"] == v,
        "network": lambda v: (
            event["Type"] == "network"
            and (actor["ID"].startswith(v) or attributes.get("name") == v)
        ),
        "label": lambda v: (
            (attributes.get(v.partition("=")[0]) == v.partition("=")[2])
            if "=" in v
            else v in attributes
        ),
        "scope": lambda v: event["scope"] == v,
        "daemon": lambda v: event["Type"] == "daemon",
    }
    for key, values in wanted.items():
        check = checks.get(key)
        if check is None:
            raise InvalidArgument(f"invalid filter '{key}'")
        if values and not any(check(v) for v in values):
            return False
    return True


async def events(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    wanted = filters(request)
    try:
        since = parse_timestamp(request.query["since"]) if request.query.get("since") else None
        until = parse_timestamp(request.query["until"]) if request.query.get("until") else None
    except ValueError as error:
        raise InvalidArgument(str(error)) from None
    _event_matches(
        {"Type": "", "Action": "", "Actor": {"ID": "", "Attributes": {}}, "scope": ""},
        {k: [] for k in wanted},
    )  # validate filter names up front
    queue = engine.events.subscribe()
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)

    async def send(event: dict) -> bool:
        moment = event["timeNano"] / 1e9
        if until is not None and moment > until:
            return False
        if _event_matches(event, wanted):
            await response.write(json.dumps(event).encode() + b"\n")
        return True

    try:
        if since is not None:
            for event in engine.events.history():
                if event["timeNano"] / 1e9 >= since and not await send(event):
                    return response
        while True:
            timeout = None if until is None else max(0.0, until - time.time())
            try:
                event = await asyncio.wait_for(queue.get(), timeout)
            except TimeoutError:
                return response
            if not await send(event):
                return response
    except (ConnectionResetError, asyncio.CancelledError):
        return response
    finally:
        engine.events.unsubscribe(queue)


def register(routes: Routes) -> None:
    routes.add("GET", "/_ping", ping)
    routes.add("HEAD", "/_ping", ping)
    routes.add("GET", "/version", version)
    routes.add("GET", "/info", info)
    routes.add("GET", "/events", events)
    routes.add("POST", "/auth", login)
