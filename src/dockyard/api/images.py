"""Image routes: list, inspect, history, tag, remove, prune, save, load, import, pull (refused
until distribution exists), commit, container export, system df, and dockyard's bootstrap."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from dockyard.api.app import Routes, engine_of, json_response
from dockyard.api.params import filters, flag, json_body
from dockyard.api.streams import BodyReader, stream_out
from dockyard.engine import image_transfer, images
from dockyard.engine.commit import CommitRequest, commit
from dockyard.engine.errors import InvalidArgument, NotFound
from dockyard.image.bootstrap import bootstrapper
from dockyard.image.reference import parse_normalized

_TAR = "application/x-tar"


def _json_line(data: dict) -> bytes:
    # dockerd's stream formatter ends each message with CRLF.
    return json.dumps(data).encode() + b"\r\n"


async def _json_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    return response


def _body(request: web.Request) -> BodyReader:
    return BodyReader(request.content, asyncio.get_running_loop())


async def list_images(request: web.Request) -> web.Response:
    engine = engine_of(request)
    return json_response(
        images.list_images(engine, all_=flag(request, "all"), wanted=filters(request))
    )


async def inspect_image(request: web.Request) -> web.Response:
    return json_response(images.inspect(engine_of(request), request.match_info["name"]))


async def image_history(request: web.Request) -> web.Response:
    return json_response(images.history(engine_of(request), request.match_info["name"]))


async def tag_image(request: web.Request) -> web.Response:
    images.tag(
        engine_of(request),
        request.match_info["name"],
        request.query.get("repo", ""),
        request.query.get("tag", ""),
    )
    return web.Response(status=201)


async def remove_image(request: web.Request) -> web.Response:
    records = images.remove(
        engine_of(request),
        request.match_info["name"],
        force=flag(request, "force"),
        prune=not flag(request, "noprune"),
    )
    return json_response(records)


async def prune_images(request: web.Request) -> web.Response:
    return json_response(images.prune(engine_of(request), filters(request)))


async def _save(request: web.Request, names: list[str]) -> web.StreamResponse:
    engine = engine_of(request)
    image_ids = image_transfer.saved_ids(engine, names)
    response = await stream_out(
        request, _TAR, lambda out: image_transfer.save_images(engine, names, out)
    )
    image_transfer.publish_saved(engine, image_ids)
    return response


async def save_images(request: web.Request) -> web.StreamResponse:
    return await _save(request, request.query.getall("names", []))


async def save_image(request: web.Request) -> web.StreamResponse:
    return await _save(request, [request.match_info["name"]])


async def load_images(request: web.Request) -> web.StreamResponse:
    messages = await image_transfer.load_images(engine_of(request), _body(request))
    response = await _json_stream(request)
    for message in messages:
        await response.write(_json_line({"stream": message + "\n"}))
    await response.write_eof()
    return response


async def create_image(request: web.Request) -> web.StreamResponse:
    """`POST /images/create`: import with fromSrc; pull with fromImage (not available)."""
    query = request.query
    if query.get("fromImage"):
        _refuse_pull(query["fromImage"], query.get("tag", ""))
    if "fromSrc" not in query:
        raise InvalidArgument("fromImage or fromSrc must be given")
    engine = engine_of(request)
    image = await image_transfer.import_image(
        engine,
        query["fromSrc"],
        _body(request),
        target=image_transfer.import_target(query.get("repo", ""), query.get("tag", "")),
        changes=query.getall("changes", []),
        message=query.get("message", ""),
    )
    response = await _json_stream(request)
    await response.write(_json_line({"status": image.id}))
    await response.write_eof()
    return response


def _refuse_pull(name: str, tag: str) -> None:
    """No registry client yet: a clear 404 in Docker's words for a repository it cannot
    reach, after the same validation dockerd does."""
    ref = parse_normalized(name)
    if tag and not ref.digest:
        ref = ref.with_tag(tag)
    raise NotFound(
        f"pull access denied for {ref.familiar_name}, repository does not exist or may "
        "require 'docker login': this daemon cannot pull from registries yet"
    )


async def commit_container(request: web.Request) -> web.Response:
    query = request.query
    body = await json_body(request, required=False)
    image = await commit(
        engine_of(request),
        CommitRequest(
            container=query.get("container", ""),
            repo=query.get("repo", ""),
            tag=query.get("tag", ""),
            comment=query.get("comment", ""),
            author=query.get("author", ""),
            changes=query.getall("changes", []),
            pause=flag(request, "pause", default=True),
            config=body or None,
        ),
    )
    return json_response({"Id": image.id}, status=201)


async def export_container(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    record = engine.containers.get(request.match_info["id"])
    response = await stream_out(
        request, _TAR, lambda out: image_transfer.export_container(engine, record, out)
    )
    engine.events.publish(
        "container",
        "export",
        record["Id"],
        {"image": record["Config"].get("Image") or record["Image"], "name": record["Name"][1:]},
    )
    return response


async def system_df(request: web.Request) -> web.Response:
    engine = engine_of(request)
    return json_response(await asyncio.to_thread(images.disk_usage, engine))


async def build_prune(request: web.Request) -> web.Response:
    """`docker system prune` and `docker builder prune`: there is no build cache (builds do not
    exist yet), so nothing is deleted; answered as dockerd answers an empty cache."""
    return json_response({"CachesDeleted": None, "SpaceReclaimed": 0})


async def bootstrap_image(request: web.Request) -> web.StreamResponse:
    """dockyard's `POST /images/bootstrap?name=busybox|debian:<suite>` (no Docker twin)."""
    what = request.query.get("name", "")
    make = bootstrapper(what, mirror=request.query.get("mirror") or None)
    response = await _json_stream(request)
    await response.write(_json_line({"status": f"Bootstrapping {what}"}))
    try:
        image = await image_transfer.bootstrap_image(engine_of(request), make)
    except Exception as error:  # the status is sent: report as dockerd's streams do
        message = str(error) or type(error).__name__
        await response.write(_json_line({"errorDetail": {"message": message}, "error": message}))
    else:
        for name in image.repo_tags:
            await response.write(_json_line({"status": f"Tagged {name}"}))
        await response.write(_json_line({"aux": {"ID": image.id}}))
    await response.write_eof()
    return response


def register(routes: Routes) -> None:
    routes.add("GET", "/images/json", list_images)
    routes.add("GET", "/images/get", save_images)
    routes.add("POST", "/images/load", load_images)
    routes.add("POST", "/images/create", create_image)
    routes.add("POST", "/images/prune", prune_images)
    routes.add("POST", "/images/bootstrap", bootstrap_image)
    routes.add("GET", "/images/{name:.+}/json", inspect_image)
    routes.add("GET", "/images/{name:.+}/history", image_history)
    routes.add("GET", "/images/{name:.+}/get", save_image)
    routes.add("POST", "/images/{name:.+}/tag", tag_image)
    routes.add("DELETE", "/images/{name:.+}", remove_image)
    routes.add("POST", "/commit", commit_container)
    routes.add("GET", "/containers/{id}/export", export_container)
    routes.add("GET", "/system/df", system_df)
    routes.add("POST", "/build/prune", build_prune)
