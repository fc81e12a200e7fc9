"""Container routes: create, list, inspect, start, stop, restart, kill, wait, attach, logs,
resize, remove."""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from dockyard.api import hijack
from dockyard.api.app import Routes, engine_of, json_response
from dockyard.api.params import check_types, filters, flag, integer, json_body
from dockyard.engine import container_list
from dockyard.engine.errors import Conflict, InvalidArgument, NotFound
from dockyard.engine.logs import read as read_logs
from dockyard.engine.timefmt import parse_timestamp
from dockyard.shim import protocol

_CONFIG_TYPES = {
    "Hostname": str,
    "Domainname": str,
    "User": str,
    "Env": list,
    "Cmd": (list, str),
    "Entrypoint": (list, str),
    "Image": str,
    "Labels": dict,
    "WorkingDir": str,
    "Volumes": dict,
    "ExposedPorts": dict,
    "Tty": bool,
    "OpenStdin": bool,
    "StdinOnce": bool,
    "AttachStdin": bool,
    "AttachStdout": bool,
    "AttachStderr": bool,
    "StopSignal": str,
    "StopTimeout": int,
    "Healthcheck": dict,
    "HostConfig": dict,
    "NetworkingConfig": dict,
}
_HOST_CONFIG_TYPES = {
    "Binds": list,
    "Memory": int,
    "MemorySwap": int,
    "MemoryReservation": int,
    "NanoCpus": int,
    "CpuShares": int,
    "CpuQuota": int,
    "CpuPeriod": int,
    "CpusetCpus": str,
    "CpusetMems": str,
    "PidsLimit": int,
    "Privileged": bool,
    "CapAdd": list,
    "CapDrop": list,
    "SecurityOpt": list,
    "ReadonlyRootfs": bool,
    "NetworkMode": str,
    "RestartPolicy": dict,
    "AutoRemove": bool,
    "Mounts": list,
    "Tmpfs": dict,
    "Ulimits": list,
    "Devices": list,
    "Sysctls": dict,
    "ExtraHosts": list,
    "Dns": list,
    "DnsSearch": list,
    "DnsOptions": list,
    "GroupAdd": list,
    "OomScoreAdj": int,
    "ShmSize": int,
    "LogConfig": dict,
    "PidMode": str,
    "IpcMode": str,
    "UTSMode": str,
    "Init": bool,
    "VolumesFrom": list,
    "PortBindings": dict,
    "BlkioWeight": int,
    "Runtime": str,
    "ConsoleSize": list,
}


def _normalise_create_body(body: dict) -> dict:
    check_types(body, _CONFIG_TYPES)
    check_types(body.get("HostConfig") or {}, _HOST_CONFIG_TYPES, "HostConfig.")
    for key in ("Cmd", "Entrypoint"):
        if isinstance(body.get(key), str):
            body[key] = [body[key]]  # Docker's strslice accepts a bare string
    for entry in body.get("Env") or []:
        if not isinstance(entry, str):
            raise InvalidArgument(
                "json: cannot unmarshal non-string into Go struct field Config.Env of type string"
            )
    return body


async def create(request: web.Request) -> web.Response:
    body = _normalise_create_body(await json_body(request))
    name = request.query.get("name")
    container_id, warnings = await engine_of(request).lifecycle.create(name, body)
    return json_response({"Id": container_id, "Warnings": warnings}, status=201)


async def list_containers(request: web.Request) -> web.Response:
    engine = engine_of(request)
    entries = container_list.list_containers(
        engine,
        all_=flag(request, "all"),
        limit=integer(request, "limit", -1),
        size=flag(request, "size"),
        wanted=filters(request),
    )
    return json_response(entries)


async def inspect(request: web.Request) -> web.Response:
    engine = engine_of(request)
    return json_response(
        container_list.inspect(engine, request.match_info["id"], flag(request, "size"))
    )


async def start(request: web.Request) -> web.Response:
    await engine_of(request).lifecycle.start(request.match_info["id"])
    return web.Response(status=204)


async def stop(request: web.Request) -> web.Response:
    await engine_of(request).lifecycle.stop(request.match_info["id"], integer(request, "t"))
    return web.Response(status=204)


async def restart(request: web.Request) -> web.Response:
    await engine_of(request).lifecycle.restart(request.match_info["id"], integer(request, "t"))
    return web.Response(status=204)


async def kill(request: web.Request) -> web.Response:
    await engine_of(request).lifecycle.kill(
        request.match_info["id"], request.query.get("signal") or None
    )
    return web.Response(status=204)


async def remove(request: web.Request) -> web.Response:
    if flag(request, "link"):
        raise InvalidArgument("links are not supported yet")
    await engine_of(request).lifecycle.remove(
        request.match_info["id"], force=flag(request, "force"), volumes=flag(request, "v")
    )
    return web.Response(status=204)


async def wait(request: web.Request) -> web.StreamResponse:
    lifecycle = engine_of(request).lifecycle
    ref = request.match_info["id"]
    condition = request.query.get("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidArgument(f"invalid condition: {condition!r}")
    pending = lifecycle.wait_prepare(ref, condition)
    # Headers now: `docker run` waits for them before it sends start.
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        if pending is not None:
            code = await pending
            result = {"StatusCode": code, "Error": None}
        else:
            result = await lifecycle.wait(ref, condition)
    except NotFound:
        result = (
            {"StatusCode": 0, "Error": None}
            if condition == "removed"
            else {"StatusCode": -1, "Error": {"Message": f"No such container: {ref}"}}
        )
    with contextlib.suppress(ConnectionResetError):
        await response.write(json.dumps(result).encode() + b"\n")
    return response


async def resize(request: web.Request) -> web.Response:
    height = integer(request, "h", 0) or 0
    width = integer(request, "w", 0) or 0
    await engine_of(request).lifecycle.resize(request.match_info["id"], height, width)
    return web.Response(status=200)


async def _log_frames(
    engine,
    record: dict,
    *,
    follow: bool,
    tail: int | None,
    since: float,
    until: float | None,
    stdout: bool,
    stderr: bool,
    timestamps: bool,
):
    tty = bool(record["Config"].get("Tty"))
    container_id = record["Id"]

    def running() -> bool:
        try:
            return engine.containers.get(container_id)["State"]["Running"]
        except NotFound:
            return False

    async for stream, payload, moment in read_logs(
        record["LogPath"], tail=tail, since=since, until=until, follow=follow, running=running
    ):
        if (stream == "stdout" and not stdout) or (stream == "stderr" and not stderr):
            continue
        if timestamps:
            payload = moment.encode() + b" " + payload
        if tty:
            yield payload
        else:
            number = protocol.STDOUT if stream == "stdout" else protocol.STDERR
            yield protocol.frame(number, payload)


def _log_options(request: web.Request) -> dict:
    stdout, stderr = flag(request, "stdout"), flag(request, "stderr")
    if not (stdout or stderr):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    tail_text = request.query.get("tail", "all")
    if tail_text in ("all", ""):
        tail = None
    else:
        try:
            tail = int(tail_text)
        except ValueError:
            raise InvalidArgument(f"invalid tail value {tail_text!r}") from None
        tail = None if tail < 0 else tail
    try:
        since = parse_timestamp(request.query["since"]) if request.query.get("since") else 0.0
        until = parse_timestamp(request.query["until"]) if request.query.get("until") else None
    except ValueError as error:
        raise InvalidArgument(str(error)) from None
    return {
        "follow": flag(request, "follow"),
        "tail": tail,
        "since": since,
        "until": until,
        "stdout": stdout,
        "stderr": stderr,
        "timestamps": flag(request, "timestamps"),
    }


async def logs(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    record = engine.containers.get(request.match_info["id"])
    if record["HostConfig"]["LogConfig"].get("Type") != "json-file":
        raise Conflict(
            f"configured logging driver does not support reading: "
            f"{record['HostConfig']['LogConfig'].get('Type')}"
        )
    options = _log_options(request)
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async for chunk in _log_frames(engine, record, **options):
            await response.write(chunk)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response


async def attach(request: web.Request) -> web.StreamResponse:
    engine = engine_of(request)
    record = engine.containers.get(request.match_info["id"])
    stdin, stdout, stderr = flag(request, "stdin"), flag(request, "stdout"), flag(request, "stderr")
    try:
        detach_keys = hijack.parse_detach_keys(request.query.get("detachKeys"))
    except ValueError as error:
        raise InvalidArgument(str(error)) from None
    if record["State"]["Paused"]:
        raise Conflict(f"You cannot attach to a paused container {record['Id']}")
    client_reader, client_writer = await hijack.hijack(request)
    try:
        if flag(request, "logs") and record["LogPath"]:
            async for chunk in _log_frames(
                engine,
                record,
                follow=False,
                tail=None,
                since=0.0,
                until=None,
                stdout=stdout,
                stderr=stderr,
                timestamps=False,
            ):
                client_writer.write(chunk)
            await client_writer.drain()
        if flag(request, "stream"):
            await _attach_stream(
                engine, record, client_reader, client_writer, stdin, stdout, stderr, detach_keys
            )
    except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError, NotFound):
        pass  # the client left, or the container was removed before it ran
    return hijack.finish(request, client_writer)


async def _attach_stream(
    engine, record, client_reader, client_writer, stdin, stdout, stderr, detach_keys
) -> None:
    shim_reader, shim_writer = await engine.lifecycle.attach(record["Id"], stdin, stdout, stderr)
    try:
        detached = await hijack.run_session(
            hijack.pump_output(shim_reader, client_writer),
            hijack.pump_stdin(client_reader, shim_writer, detach_keys) if stdin else None,
        )
    finally:
        shim_writer.close()
    if detached:
        engine.lifecycle.detached(record["Id"])


async def attach_ws(request: web.Request) -> web.WebSocketResponse:
    """Attach over a websocket: raw output (no frames) out, binary or text messages in."""
    engine = engine_of(request)
    record = engine.containers.get(request.match_info["id"])
    stdin, stdout, stderr = flag(request, "stdin"), flag(request, "stdout"), flag(request, "stderr")
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    if flag(request, "logs") and record["LogPath"]:
        options = {
            "follow": False,
            "tail": None,
            "since": 0.0,
            "until": None,
            "stdout": stdout,
            "stderr": stderr,
            "timestamps": False,
        }
        async for chunk in _log_frames(engine, record, **options):
            await socket.send_bytes(_unframe_one(chunk) if not record["Config"]["Tty"] else chunk)
    if flag(request, "stream"):
        shim_reader, shim_writer = await engine.lifecycle.attach(
            record["Id"], stdin, stdout, stderr
        )
        output = asyncio.create_task(_ws_output(shim_reader, socket, record["Config"]["Tty"]))
        try:
            if stdin:
                async for message in socket:
                    if message.type in (web.WSMsgType.BINARY, web.WSMsgType.TEXT):
                        data = message.data
                        shim_writer.write(data if isinstance(data, bytes) else data.encode())
                        await shim_writer.drain()
                if shim_writer.can_write_eof():
                    shim_writer.write_eof()
            await output
        finally:
            output.cancel()
            shim_writer.close()
    await socket.close()
    return socket


def _unframe_one(chunk: bytes) -> bytes:
    return chunk[protocol.HEADER_SIZE :]


async def _ws_output(
    reader: asyncio.StreamReader, socket: web.WebSocketResponse, tty: bool
) -> None:
    while True:
        if tty:
            data = await reader.read(65536)
        else:
            try:
                header = await reader.readexactly(protocol.HEADER_SIZE)
            except asyncio.IncompleteReadError:
                return
            _, length = protocol.parse_header(header)
            data = await reader.readexactly(length)
        if not data:
            return
        await socket.send_bytes(data)


def register(routes: Routes) -> None:
    routes.add("POST", "/containers/create", create)
    routes.add("GET", "/containers/json", list_containers)
    routes.add("GET", "/containers/{id}/json", inspect)
    routes.add("POST", "/containers/{id}/start", start)
    routes.add("POST", "/containers/{id}/stop", stop)
    routes.add("POST", "/containers/{id}/restart", restart)
    routes.add("POST", "/containers/{id}/kill", kill)
    routes.add("POST", "/containers/{id}/wait", wait)
    routes.add("POST", "/containers/{id}/attach", attach)
    routes.add("GET", "/containers/{id}/attach/ws", attach_ws)
    routes.add("POST", "/containers/{id}/resize", resize)
    routes.add("GET", "/containers/{id}/logs", logs)
    routes.add("DELETE", "/containers/{id}", remove)
