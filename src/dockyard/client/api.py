"""A small Engine API client: JSON requests, chunked streams and hijacked (101) connections."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from dockyard.client.streams import HijackedStream, json_lines
from dockyard.client.transport import Host

API_VERSION = "1.41"


class APIError(Exception):
    """An error status from the daemon, carrying Docker's message text."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return f"Error response from daemon: {self.message}"


class ConnectError(Exception):
    """The daemon did not answer at all."""

    def __init__(self, url: str):
        super().__init__(
            f"Cannot connect to the Docker daemon at {url}. Is the docker daemon running?"
        )


def _query(params: dict[str, Any] | None) -> str:
    if not params:
        return ""
    pairs = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, tuple):  # a repeated parameter (commit's changes)
            pairs.extend((key, str(v)) for v in value)
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, dict | list):
            value = json.dumps(value, separators=(",", ":"))
        pairs.append((key, str(value)))
    return "?" + urlencode(pairs) if pairs else ""


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
        if isinstance(data, dict) and "message" in data:
            return str(data["message"])
    except ValueError:
        pass
    return body.decode(errors="replace").strip()


class Client:
    """One daemon. Every call opens its own connection, as the docker CLI's requests do."""

    def __init__(self, host: Host, url: str, timeout: float | None = None):
        self.host = host
        self.url = url
        self.timeout = timeout

    def path(self, path: str, params: dict[str, Any] | None = None) -> str:
        return f"/v{API_VERSION}{path}{_query(params)}"

    def open(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a request and return the response once its headers arrived (errors raised)."""
        headers = dict(headers or {})
        data: Any = None
        if (
            body is not None
            and not isinstance(body, bytes | bytearray)
            and not hasattr(body, "read")
        ):
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        else:
            data = body
        if data is None and method in ("POST", "PUT"):
            data = b""
        connection = self.host.http(timeout if timeout is not None else self.timeout)
        try:
            if hasattr(data, "read"):
                headers.setdefault("Transfer-Encoding", "chunked")
                connection.request(
                    method,
                    self.path(path, params),
                    body=data,
                    headers=headers,
                    encode_chunked=True,
                )
            else:
                connection.request(method, self.path(path, params), body=data, headers=headers)
            response = connection.getresponse()
        except (ConnectionRefusedError, FileNotFoundError, socket.gaierror) as error:
            connection.close()
            raise ConnectError(self.url) from error
        except BaseException:
            connection.close()
            raise
        if response.status >= 400:
            message = _error_message(response.read())
            connection.close()
            raise APIError(response.status, message)
        return connection, response

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request whose whole answer is read: parsed JSON, or None when empty."""
        connection, response = self.open(method, path, **kwargs)
        try:
            data = response.read()
        finally:
            connection.close()
        if not data:
            return None
        if "json" in (response.getheader("Content-Type") or "") or data[:1] in (b"{", b"["):
            return json.loads(data)
        return data.decode(errors="replace")

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.call("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.call("DELETE", path, **kwargs)

    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """A chunked JSON stream, one object at a time (events, pull, load, bootstrap)."""
        connection, response = self.open(method, path, **kwargs)
        try:
            yield from json_lines(response)
        finally:
            connection.close()

    def raw(self, method: str, path: str, **kwargs: Any) -> tuple[Any, http.client.HTTPResponse]:
        """The response itself, for bodies that are bytes (logs, archives, exports)."""
        return self.open(method, path, **kwargs)

    def hijack(
        self, path: str, params: dict[str, Any] | None = None, body: Any = None
    ) -> HijackedStream:
        """POST upgraded to a raw two-way stream (attach, exec start)."""
        headers = {"Connection": "Upgrade", "Upgrade": "tcp"}
        connection, response = self.open("POST", path, params=params, body=body, headers=headers)
        # the stream owns the socket and the buffered reader (which may hold stream bytes
        # already); detached so that neither the connection nor the response closes them
        sock, reader = connection.sock, response.fp
        connection.sock, response.fp = None, None
        return HijackedStream(sock, reader, upgraded=response.status == 101)

    def ping(self, timeout: float = 5) -> bool:
        try:
            connection = self.host.http(timeout)
            try:
                connection.request("GET", "/_ping")
                return connection.getresponse().status == 200
            finally:
                connection.close()
        except OSError:
            return False

    def ref(self, name: str) -> str:
        """A name or id as a path segment (image names keep their slashes and colons)."""
        return quote(name, safe="/:@")
