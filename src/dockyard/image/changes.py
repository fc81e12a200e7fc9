"""Dockerfile-style changes applied to a container config (`docker import/commit --change`).

Each change is one instruction: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
STOPSIGNAL, USER, VOLUME or WORKDIR, the set Docker accepts, with Docker's parsing rules and
error messages. Variables in arguments expand against the config's Env as it was before the
instruction, as in a Dockerfile.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
import signal
from collections.abc import Callable, Iterable
from typing import Any

from .errors import InvalidArgument
from .shellwords import env_map, expand, split_words

DEFAULT_SHELL = ["/bin/sh", "-c"]
_PORT = re.compile(r"(\d+)(?:-(\d+))?")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6}
_DURATION_UNITS.update({"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9})
_HEALTHCHECK_DURATIONS = {
    "interval": "Interval",
    "timeout": "Timeout",
    "start-period": "StartPeriod",
    "start-interval": "StartInterval",
}


def _at_least_one(command: str) -> InvalidArgument:
    return InvalidArgument(f"{command} requires at least one argument")


def _exactly_one(command: str) -> InvalidArgument:
    return InvalidArgument(f"{command} requires exactly one argument")


def _json_list(rest: str) -> list[str] | None:
    """The JSON-array form of an argument list, or None for the shell form."""
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise InvalidArgument(
            "when using JSON array syntax, arrays must be comprised of strings only"
        )
    return value


class _Changes:
    """Applies instructions in order to one config, remembering whether CMD was set."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.cmd_set = False

    @property
    def env(self) -> dict[str, str]:
        return env_map(self.config.get("Env"))

    def command_line(self, rest: str) -> list[str]:
        json_form = _json_list(rest)
        if json_form is not None:
            return json_form
        return [*(self.config.get("Shell") or DEFAULT_SHELL), rest]

    def key_values(self, command: str, rest: str) -> list[tuple[str, str]]:
        """`K V` (legacy, one pair) or `K=V K2="V 2" ...`, expanded."""
        words = split_words(rest)
        if not words:
            raise _at_least_one(command)
        env = self.env
        if "=" not in words[0]:
            parts = rest.split(None, 1)
            if len(parts) < 2:
                raise InvalidArgument(f"{command} must have two arguments")
            pairs = [(parts[0], parts[1])]
        else:
            pairs = []
            for word in words:
                if "=" not in word:
                    raise InvalidArgument(
                        f"Syntax error - can't find = in {json.dumps(word)}. "
                        "Must be of the form: name=value"
                    )
                key, _, value = word.partition("=")
                pairs.append((key, value))
        out = [(expand(k, env), expand(v, env)) for k, v in pairs]
        if any(not key for key, _ in out):
            raise InvalidArgument(f"{command} names can not be blank")
        return out

    def one_word(self, command: str, rest: str) -> str:
        if not rest:
            raise _exactly_one(command)
        return expand(rest, self.env)

    def do_cmd(self, rest: str) -> None:
        self.config["Cmd"] = self.command_line(rest)
        self.cmd_set = True

    def do_entrypoint(self, rest: str) -> None:
        self.config["Entrypoint"] = self.command_line(rest)
        # An entrypoint replaces the image's CMD unless this same change set gave one.
        if not self.cmd_set:
            self.config["Cmd"] = None

    def do_env(self, rest: str) -> None:
        env = list(self.config.get("Env") or [])
        for key, value in self.key_values("ENV", rest):
            entry = f"{key}={value}"
            for i, existing in enumerate(env):
                if existing.partition("=")[0] == key:
                    env[i] = entry
                    break
            else:
                env.append(entry)
        self.config["Env"] = env

    def do_label(self, rest: str) -> None:
        labels = dict(self.config.get("Labels") or {})
        labels.update(self.key_values("LABEL", rest))
        self.config["Labels"] = labels

    def do_expose(self, rest: str) -> None:
        words = rest.split()
        if not words:
            raise _at_least_one("EXPOSE")
        ports = dict(self.config.get("ExposedPorts") or {})
        env = self.env
        for word in words:
            for port in parse_port_spec(expand(word, env)):
                ports[port] = {}
        self.config["ExposedPorts"] = ports

    def do_user(self, rest: str) -> None:
        if len(rest.split()) != 1:
            raise _exactly_one("USER")
        self.config["User"] = expand(rest, self.env)

    def do_volume(self, rest: str) -> None:
        paths = _json_list(rest)
        if paths is None:
            paths = rest.split()
        if not paths:
            raise _at_least_one("VOLUME")
        volumes = dict(self.config.get("Volumes") or {})
        env = self.env
        for path in paths:
            path = expand(path, env).strip()
            if not path:
                raise InvalidArgument("VOLUME specified can not be an empty string")
            volumes[path] = {}
        self.config["Volumes"] = volumes

    def do_workdir(self, rest: str) -> None:
        path = self.one_word("WORKDIR", rest)
        if not path:
            raise InvalidArgument("cannot normalize nothing")
        if not path.startswith("/"):
            # Relative to the previous WORKDIR; Docker cleans only the joined form.
            path = posixpath.normpath(
                posixpath.join("/", self.config.get("WorkingDir") or "", path)
            )
        self.config["WorkingDir"] = path

    def do_stopsignal(self, rest: str) -> None:
        self.config["StopSignal"] = check_signal(self.one_word("STOPSIGNAL", rest))

    def do_onbuild(self, rest: str) -> None:
        trigger = rest.split(None, 1)[0].upper() if rest.strip() else ""
        if not trigger:
            raise _at_least_one("ONBUILD")
        if trigger == "ONBUILD":
            raise InvalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger in ("FROM", "MAINTAINER"):
            raise InvalidArgument(f"{trigger} isn't allowed as an ONBUILD trigger")
        self.config["OnBuild"] = [*(self.config.get("OnBuild") or []), rest.strip()]

    def do_healthcheck(self, rest: str) -> None:
        self.config["Healthcheck"] = parse_healthcheck(rest)


_COMMANDS: dict[str, Callable[[_Changes, str], None]] = {
    name[3:]: method for name, method in vars(_Changes).items() if name.startswith("do_")
}


def apply_changes(config: dict[str, Any], changes: Iterable[str]) -> dict[str, Any]:
    """A copy of `config` with each change applied in order; `config` is left untouched."""
    state = _Changes(copy.deepcopy(config))
    for line in _logical_lines(changes):
        keyword, *rest = line.split(None, 1)
        handler = _COMMANDS.get(keyword.lower())
        if handler is None:
            raise InvalidArgument(f"{keyword.lower()} is not a valid change command")
        handler(state, rest[0].strip() if rest else "")
    return state.config


def _logical_lines(changes: Iterable[str]) -> list[str]:
    """Docker parses the changes as one Dockerfile: `\\` continues a line, `#` starts a comment,
    blank lines are skipped."""
    lines, pending = [], ""
    for physical in "\n".join(changes).splitlines():
        stripped = physical.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1]
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending.strip():
        lines.append(pending.strip())
    return lines


def parse_port_spec(spec: str) -> list[str]:
    """`80`, `80/udp`, `8000-8002/tcp` -> ["80/tcp"], ... (Docker's nat.ParsePortSpec)."""
    port, _, proto = spec.partition("/")
    proto = proto.lower() or "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {spec.partition('/')[2]}")
    match = _PORT.fullmatch(port)
    start = int(match.group(1)) if match else -1
    end = int(match.group(2)) if match and match.group(2) else start
    if not match or not 0 <= start <= end <= 65535:
        raise InvalidArgument(f"invalid containerPort: {port}")
    return [f"{p}/{proto}" for p in range(start, end + 1)]


def check_signal(name: str) -> str:
    """Accept what Docker's signal.ParseSignal accepts: a number or a name with or without SIG."""
    if name.isdigit() and 0 < int(name) <= signal.SIGRTMAX:
        return name
    bare = name.upper().removeprefix("SIG")
    rt = re.fullmatch(r"RTM(IN|AX)([+-]\d+)?", bare)
    if bare in signal.Signals.__members__ or f"SIG{bare}" in signal.Signals.__members__ or rt:
        return name
    raise InvalidArgument(f"Invalid signal: {name}")


def parse_duration(text: str) -> int:
    """A Go duration (`30s`, `1m30s`, `1.5h`, `0`) in nanoseconds."""
    if text == "0":
        return 0
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidArgument(f'time: invalid duration "{text}"')
    return int(sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts))


def parse_healthcheck(rest: str) -> dict[str, Any]:
    """`NONE`, or `[--interval=D --timeout=D --start-period=D --start-interval=D --retries=N]
    CMD command` in shell or JSON form."""
    words = rest.split(None, 1)
    if words and words[0].upper() == "NONE":
        if len(words) > 1:
            raise InvalidArgument("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    check: dict[str, Any] = {}
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        name, eq, value = flag[2:].partition("=")
        if name in _HEALTHCHECK_DURATIONS and eq:
            nanos = parse_duration(value)
            if 0 < nanos < 10**6:
                raise InvalidArgument(f"{_HEALTHCHECK_DURATIONS[name]} cannot be less than 1ms")
            if nanos:
                check[_HEALTHCHECK_DURATIONS[name]] = nanos
        elif name == "retries" and eq and re.fullmatch(r"-?\d+", value):
            if int(value) < 0:
                raise InvalidArgument("--retries cannot be negative")
            if int(value):
                check["Retries"] = int(value)
        else:
            raise InvalidArgument(f"Unknown flag: {name}")
    kind, _, command = rest.partition(" ")
    if kind.upper() != "CMD":
        raise InvalidArgument(f'Unknown type "{kind.upper()}" in HEALTHCHECK (try CMD)')
    command = command.strip()
    if not command:
        raise _at_least_one("HEALTHCHECK")
    json_form = _json_list(command)
    test = ["CMD", *json_form] if json_form is not None else ["CMD-SHELL", command]
    return {"Test": test, **check}
