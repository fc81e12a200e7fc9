"""Reading query strings and bodies the way Docker's clients write them."""

from __future__ import annotations

import json

from aiohttp import web

from dockyard.engine.errors import InvalidArgument

_FALSE = {"", "0", "no", "false", "none"}


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    """Docker's query booleans: the CLI sends 1/true, docker-py True/False."""
    value = request.query.get(name)
    if value is None:
        return default
    return value.strip().lower() not in _FALSE


def integer(request: web.Request, name: str, default: int | None = None) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"invalid value for {name}: {value!r}") from None


def filters(request: web.Request) -> dict[str, list[str]]:
    """`filters` in both shapes: {"k": {"v": true}} (CLI) and {"k": ["v"]} (docker-py)."""
    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as error:
        raise InvalidArgument(f"invalid filter: {error}") from None
    if not isinstance(parsed, dict):
        raise InvalidArgument("invalid filter: not a JSON object")
    out: dict[str, list[str]] = {}
    for key, value in parsed.items():
        if isinstance(value, dict):
            out[key] = [k for k, v in value.items() if v]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        elif isinstance(value, str):
            out[key] = [value]
        else:
            raise InvalidArgument(f"invalid filter value for {key!r}")
    return out


async def json_body(request: web.Request, required: bool = True) -> dict:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise InvalidArgument("request body is empty")
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidArgument(f"invalid JSON: {error}") from None
    if body is None and not required:
        return {}
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON: expected an object")
    return body


def check_types(body: dict, schema: dict[str, type | tuple[type, ...]], where: str = "") -> None:
    """Reject wrong JSON types with Docker's wording (it reports Go's unmarshal errors)."""
    for key, expected in schema.items():
        value = body.get(key)
        if value is not None and not isinstance(value, expected):
            names = expected if isinstance(expected, tuple) else (expected,)
            wanted = "/".join(_json_type(t) for t in names)
            raise InvalidArgument(
                f"json: cannot unmarshal {_json_type(type(value))} into Go struct field "
                f"{where}{key} of type {wanted}"
            )


def _json_type(kind: type) -> str:
    return {
        str: "string",
        int: "number",
        float: "number",
        bool: "bool",
        list: "array",
        dict: "object",
        type(None): "null",
    }.get(kind, kind.__name__)
