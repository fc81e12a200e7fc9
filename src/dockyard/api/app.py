"""The aiohttp application: routes under every /vX.YY prefix, Docker's headers and errors."""

from __future__ import annotations

import json
import logging
import re
import traceback

from aiohttp import web

from dockyard.engine.engine import API_VERSION, VERSION, Engine
from dockyard.engine.errors import EngineError, NotModified
from dockyard.image import errors as image_errors
from dockyard.storage import errors as storage_errors

log = logging.getLogger("dockyard.api")
ENGINE = web.AppKey("engine", Engine)
_VERSION_PREFIX = re.compile(r"^/v(\d+\.\d+)(/.*)$")


def engine_of(request: web.Request) -> Engine:
    return request.app[ENGINE]


def json_response(data: object, status: int = 200) -> web.Response:
    """JSON with Docker's bare Content-Type: the CLI only decodes errors sent that way."""
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def error_response(status: int, message: str) -> web.Response:
    if status == 304:
        return web.Response(status=304)
    return json_response({"message": message}, status=status)


_IMAGE_STATUS = {
    image_errors.NotFound: 404,
    image_errors.Conflict: 409,
    image_errors.InvalidArgument: 400,
}


@web.middleware
async def errors_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except NotModified:
        return web.Response(status=304)
    except EngineError as error:
        return error_response(error.status, str(error))
    except tuple(_IMAGE_STATUS) as error:
        status = next(s for kind, s in _IMAGE_STATUS.items() if isinstance(error, kind))
        return error_response(status, str(error))
    except storage_errors.NotFound as error:
        return error_response(404, str(error))
    except storage_errors.StorageError as error:
        return error_response(400 if isinstance(error, ValueError) else 500, str(error))
    except web.HTTPException as error:
        if error.status == 404 and error.text and "Not Found" in error.text:
            return error_response(404, "page not found")
        if error.status == 405:
            return error_response(404, "page not found")
        raise
    except ConnectionResetError:
        raise
    except Exception as error:  # the daemon never dies of a request
        log.error("%s %s failed:\n%s", request.method, request.path, traceback.format_exc())
        return error_response(500, f"{type(error).__name__}: {error}")


async def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Api-Version"] = API_VERSION
    response.headers["Docker-Experimental"] = "false"
    response.headers["Ostype"] = "linux"
    response.headers["Server"] = f"Docker/{VERSION} (linux)"


class Routes:
    """Registers each route at its path and under the /vX.YY prefix clients add."""

    def __init__(self, app: web.Application):
        self.app = app

    def add(self, method: str, path: str, handler) -> None:
        self.app.router.add_route(method, path, handler)
        self.app.router.add_route(method, r"/v{api_version:\d+\.\d+}" + path, handler)


def create_app(engine: Engine) -> web.Application:
    from dockyard.api import (
        container_ops,
        containers,
        execs,
        images,
        networks,
        system,
        volumes,
    )

    # JSON bodies are small; archives and build contexts are read as streams, not bounded here.
    app = web.Application(middlewares=[errors_middleware], client_max_size=64 * 1024 * 1024)
    app[ENGINE] = engine
    app.on_response_prepare.append(_add_headers)
    routes = Routes(app)
    system.register(routes)
    containers.register(routes)
    execs.register(routes)
    container_ops.register(routes)
    images.register(routes)
    volumes.register(routes)
    networks.register(routes)
    return app
