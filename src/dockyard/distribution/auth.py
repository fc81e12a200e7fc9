"""`docker login`: check credentials against a registry's /v2/ the way dockerd does.

GET /v2/ first; a 401 names the scheme in WWW-Authenticate: Basic is retried with the
credentials, Bearer sends them to the token realm and checks /v2/ again with the token.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass
from http import HTTPStatus

import aiohttp
from yarl import URL

DOCKER_HUB_ADDRESS = "https://index.docker.io/v1/"
_HUB_NAMES = {"index.docker.io", "docker.io", "registry-1.docker.io"}
_HUB_HOST = "registry-1.docker.io"
_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=15)
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class LoginFailed(Exception):
    """A failed login with the status dockerd answers it with."""

    def __init__(self, message: str, status: int = 500):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()


@dataclass(frozen=True)
class LoginResult:
    status: str
    identity_token: str


def registry_host(server_address: str) -> str:
    """The registry's host[:port]: Docker accepts a bare host, a URL, or nothing (Hub)."""
    address = server_address.strip() or DOCKER_HUB_ADDRESS
    for prefix in ("https://", "http://"):
        if address.startswith(prefix):
            address = address[len(prefix) :]
    host = address.split("/", 1)[0]
    return _HUB_HOST if host in _HUB_NAMES else host


def _is_insecure(host: str) -> bool:
    """Docker's default insecure registries: loopback (127.0.0.0/8) and localhost."""
    name = URL(f"//{host}").host or host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def endpoints(host: str) -> list[URL]:
    """https first; an insecure registry also over http (its https is not verified)."""
    urls = [URL(f"https://{host}")]
    if _is_insecure(host):
        urls.append(URL(f"http://{host}"))
    return urls


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="..."` -> ("bearer", {"realm": ..., "service": ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for match in _CHALLENGE_PARAM.finditer(rest):
        quoted, bare = match.group(2), match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted else bare or ""
    return scheme.lower(), params


def _failed_status(url: URL, status: int) -> LoginFailed:
    try:
        text = HTTPStatus(status).phrase
    except ValueError:  # a status Python does not name
        text = ""
    message = f"login attempt to {url} failed with status: {status} {text}".rstrip()
    return LoginFailed(message, 401 if status == 401 else 500)


async def _token(
    session: aiohttp.ClientSession, challenge: dict[str, str], credentials: Credentials
) -> tuple[str, str]:
    """(token, refresh token) from the realm, asked as dockerd asks for an offline token."""
    realm = challenge.get("realm")
    if not realm:
        raise LoginFailed("bearer challenge without a realm")
    query = {"account": credentials.username, "client_id": "docker", "offline_token": "true"}
    if challenge.get("service"):
        query["service"] = challenge["service"]
    url = URL(realm).update_query(query)
    headers = {"Authorization": credentials.basic()}
    async with session.get(url, headers=headers) as response:
        if response.status != 200:
            detail = await _error_detail(response)
            status = 401 if response.status == 401 else 500
            raise LoginFailed(f'Get "{url}": {detail}', status)
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = None
    token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
    if not token:
        raise LoginFailed(f'Get "{url}": the token server answered no token')
    return token, body.get("refresh_token") or ""


async def _error_detail(response: aiohttp.ClientResponse) -> str:
    """`unauthorized: <why>` from the token server's JSON, as dockerd reports it."""
    kind = "unauthorized" if response.status == 401 else f"unexpected status {response.status}"
    try:
        body = await response.json(content_type=None)
    except ValueError:
        body = None
    why = ""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            why = str(errors[0].get("message") or "")
        why = why or str(body.get("details") or body.get("message") or "")
    return f"{kind}: {why}" if why else f"{kind}: {response.reason or ''}".rstrip(": ")


async def _login_endpoint(
    session: aiohttp.ClientSession, base: URL, credentials: Credentials
) -> LoginResult:
    ping = base / "v2" / ""
    async with session.get(ping) as response:
        if response.status == 200:
            return LoginResult("Login Succeeded", "")
        if response.status != 401:
            raise _failed_status(ping, response.status)
        scheme, challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
    identity_token = ""
    if scheme == "basic":
        authorization = credentials.basic()
    elif scheme == "bearer":
        token, identity_token = await _token(session, challenge, credentials)
        authorization = f"Bearer {token}"
    else:
        raise _failed_status(ping, 401)
    async with session.get(ping, headers={"Authorization": authorization}) as response:
        if response.status != 200:
            raise _failed_status(ping, response.status)
    return LoginResult("Login Succeeded", identity_token)


async def login(server_address: str, username: str, password: str) -> LoginResult:
    """Try each endpoint in turn; refused credentials stop there (no retry in clear text)."""
    credentials = Credentials(username, password)
    failure: LoginFailed | None = None
    # Insecure registries skip certificate checks, as dockerd's InsecureSkipVerify does.
    host = registry_host(server_address)
    connector = aiohttp.TCPConnector(ssl=not _is_insecure(host))
    async with aiohttp.ClientSession(timeout=_TIMEOUT, connector=connector) as session:
        for base in endpoints(host):
            try:
                return await _login_endpoint(session, base, credentials)
            except LoginFailed as error:
                if error.status == 401:
                    raise
                failure = error
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                reason = str(error) or type(error).__name__
                failure = LoginFailed(f'Get "{base / "v2" / ""}": {reason}')
    assert failure is not None  # endpoints() is never empty
    raise failure
