"""Container records: Docker's inspect document, persisted, looked up by ID, prefix or name.

The record is the shape `docker inspect` shows (Id, Name, State, Config, HostConfig, ...):
the engine keeps it as Docker does, so inspect is a read and nothing is translated twice.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from dockyard.engine import names
from dockyard.engine.errors import Conflict, InvalidArgument, NoSuchContainer
from dockyard.store import Database

# Config fields an image supplies when the create body leaves them empty.
_IMAGE_DEFAULTS = ("User", "WorkingDir", "StopSignal", "Healthcheck", "Domainname")


def now_rfc3339() -> str:
    ns = time.time_ns()
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


ZERO_TIME = "0001-01-01T00:00:00Z"


def new_state() -> dict:
    return {
        "Status": "created",
        "Running": False,
        "Paused": False,
        "Restarting": False,
        "OOMKilled": False,
        "Dead": False,
        "Pid": 0,
        "ExitCode": 0,
        "Error": "",
        "StartedAt": ZERO_TIME,
        "FinishedAt": ZERO_TIME,
    }


class ContainerStore:
    """The containers table, one JSON document per container, cached in memory."""

    def __init__(self, db: Database):
        self.db = db
        self._lock = threading.RLock()
        self._by_id: dict[str, dict] = {}
        for row in db.query("SELECT data FROM containers"):
            record = json.loads(row["data"])
            self._by_id[record["Id"]] = record

    def all(self) -> list[dict]:
        with self._lock:
            return sorted(self._by_id.values(), key=lambda r: r["Created"], reverse=True)

    def get(self, ref: str) -> dict:
        """By full ID, exact name (with or without slash), or unique ID prefix."""
        with self._lock:
            if ref in self._by_id:
                return self._by_id[ref]
            name = ref.lstrip("/")
            for record in self._by_id.values():
                if record["Name"] == "/" + name:
                    return record
            if ref:
                matches = [r for i, r in self._by_id.items() if i.startswith(ref)]
                if len(matches) == 1:
                    return matches[0]
                if len(matches) > 1:
                    raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise NoSuchContainer(ref)

    def name_taken(self, name: str) -> dict | None:
        with self._lock:
            for record in self._by_id.values():
                if record["Name"] == "/" + name:
                    return record
        return None

    def save(self, record: dict) -> None:
        with self._lock, self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO containers (id, name, created, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name = excluded.name, data = excluded.data",
                (record["Id"], record["Name"].lstrip("/"), time.time(), json.dumps(record)),
            )
            self._by_id[record["Id"]] = record

    def delete(self, container_id: str) -> None:
        with self._lock, self.db.transaction() as conn:
            conn.execute("DELETE FROM containers WHERE id = ?", (container_id,))
            self._by_id.pop(container_id, None)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.all())


def new_id() -> str:
    return secrets.token_hex(32)


def merge_config(body: dict, image_config: dict) -> dict:
    """The create body's Config completed from the image, with Docker's rules."""
    config = {
        key: body.get(key)
        for key in (
            "Hostname",
            "Domainname",
            "User",
            "AttachStdin",
            "AttachStdout",
            "AttachStderr",
            "ExposedPorts",
            "Tty",
            "OpenStdin",
            "StdinOnce",
            "Env",
            "Cmd",
            "Healthcheck",
            "ArgsEscaped",
            "Image",
            "Volumes",
            "WorkingDir",
            "Entrypoint",
            "NetworkDisabled",
            "MacAddress",
            "OnBuild",
            "Labels",
            "StopSignal",
            "StopTimeout",
            "Shell",
        )
    }
    for key in ("AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce"):
        config[key] = bool(config[key])
    for key in _IMAGE_DEFAULTS:
        if not config.get(key) and image_config.get(key):
            config[key] = image_config[key]
    # Entrypoint given: the image's Cmd no longer applies. Neither given: both from the image.
    if config["Entrypoint"] is None:
        config["Entrypoint"] = image_config.get("Entrypoint")
        if not config["Cmd"]:
            config["Cmd"] = image_config.get("Cmd")
    env = list(image_config.get("Env") or [])
    for entry in config["Env"] or []:
        key = entry.partition("=")[0]
        env = [e for e in env if e.partition("=")[0] != key]
        env.append(entry)
    config["Env"] = env
    config["Labels"] = {**(image_config.get("Labels") or {}), **(config["Labels"] or {})}
    for key in ("ExposedPorts", "Volumes"):
        merged = {**(image_config.get(key) or {}), **(config[key] or {})}
        config[key] = merged or None
    config["WorkingDir"] = config.get("WorkingDir") or ""
    config["User"] = config.get("User") or ""
    config["OnBuild"] = None
    return config


def command_of(config: dict) -> list[str]:
    command = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
    if not command:
        raise InvalidArgument("No command specified")
    return command


def validate_host_config(host_config: dict) -> None:
    restart = (host_config.get("RestartPolicy") or {}).get("Name") or "no"
    if restart not in ("", "no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid restart policy '{restart}'")
    if host_config.get("AutoRemove") and restart not in ("", "no"):
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    retries = (host_config.get("RestartPolicy") or {}).get("MaximumRetryCount") or 0
    if retries and restart != "on-failure":
        raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{restart}'")
    if retries < 0:
        raise InvalidArgument("maximum retry count cannot be negative")


def new_record(
    container_id: str,
    name: str,
    body: dict,
    image_id: str,
    image_config: dict,
    container_dir: Path,
    driver: str,
) -> dict:
    config = merge_config(body, image_config)
    command = command_of(config)
    host_config = dict(body.get("HostConfig") or {})
    validate_host_config(host_config)
    host_config.setdefault("NetworkMode", "default")
    if not host_config.get("NetworkMode"):
        host_config["NetworkMode"] = "default"
    host_config.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
    if not host_config["LogConfig"].get("Type"):
        log_options = host_config["LogConfig"].get("Config") or {}
        host_config["LogConfig"] = {"Type": "json-file", "Config": log_options}
    host_config.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
    if not host_config["RestartPolicy"].get("Name"):
        host_config["RestartPolicy"]["Name"] = "no"
    config["Image"] = body.get("Image") or image_id
    if not config.get("Hostname"):
        config["Hostname"] = container_id[:12]
    return {
        "Id": container_id,
        "Created": now_rfc3339(),
        "Path": command[0],
        "Args": command[1:],
        "State": new_state(),
        "Image": image_id,
        "ResolvConfPath": str(container_dir / "resolv.conf"),
        "HostnamePath": str(container_dir / "hostname"),
        "HostsPath": str(container_dir / "hosts"),
        "LogPath": str(container_dir / f"{container_id}-json.log")
        if host_config["LogConfig"]["Type"] == "json-file"
        else "",
        "Name": "/" + name,
        "RestartCount": 0,
        "Driver": driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config,
        "GraphDriver": {"Data": None, "Name": driver},
        "Mounts": [],
        "Config": config,
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": {},
            "SandboxKey": "",
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": "",
            "Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "MacAddress": "",
            "Networks": {},
        },
    }


def check_name(store: ContainerStore, requested: str | None) -> str:
    if not requested:
        return names.generate(lambda n: store.name_taken(n) is not None)
    name = names.validate(requested)
    holder = store.name_taken(name)
    if holder is not None:
        raise Conflict(
            f'Conflict. The container name "/{name}" is already in use by container '
            f'"{holder["Id"]}". You have to remove (or rename) that container to be able to '
            "reuse that name."
        )
    return name


def status_text(state: dict, now: float | None = None) -> str:
    """The Status column of `docker ps`: "Up 3 seconds", "Exited (0) 2 minutes ago"..."""
    from dockyard.engine.timefmt import human_duration, parse_rfc3339

    now = time.time() if now is None else now
    status = state["Status"]
    if status in ("running", "paused"):
        text = f"Up {human_duration(now - parse_rfc3339(state['StartedAt']))}"
        if state.get("Health"):
            health = state["Health"]["Status"]
            text += " (health: starting)" if health == "starting" else f" ({health})"
        return text + (" (Paused)" if status == "paused" else "")
    if status == "restarting":
        return (
            f"Restarting ({state['ExitCode']}) "
            f"{human_duration(now - parse_rfc3339(state['FinishedAt']))} ago"
        )
    if status == "exited":
        return (
            f"Exited ({state['ExitCode']}) "
            f"{human_duration(now - parse_rfc3339(state['FinishedAt']))} ago"
        )
    if status == "dead":
        return "Dead"
    if status == "removing":
        return "Removal In Progress"
    return "Created"


def container_dir(data_root: Path, container_id: str) -> Path:
    return data_root / "containers" / container_id


def remove_dir(path: Path) -> None:
    import shutil

    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    # A left-over mount point would make rmtree fail silently: say so in the daemon log.
    if path.exists():
        sys.stderr.write(f"warning: could not remove {path}\n")
