"""`docker ps` and `docker inspect` views of the container records."""

from __future__ import annotations

from dockyard.engine.containers import status_text
from dockyard.engine.errors import InvalidArgument
from dockyard.engine.timefmt import parse_rfc3339

_FILTERS = {
    "id",
    "name",
    "label",
    "status",
    "exited",
    "ancestor",
    "before",
    "since",
    "health",
    "volume",
    "network",
    "is-task",
    "publish",
    "expose",
    "isolation",
}
_STATUSES = {"created", "restarting", "running", "removing", "paused", "exited", "dead"}


def _command(record: dict) -> str:
    return " ".join([record["Path"], *record["Args"]]).strip()


def _ports(record: dict) -> list[dict]:
    ports = []
    for spec, bindings in (record["NetworkSettings"].get("Ports") or {}).items():
        number, _, proto = spec.partition("/")
        if not bindings:
            ports.append({"PrivatePort": int(number), "Type": proto or "tcp"})
            continue
        for binding in bindings:
            ports.append(
                {
                    "IP": binding.get("HostIp") or "0.0.0.0",
                    "PrivatePort": int(number),
                    "PublicPort": int(binding["HostPort"]),
                    "Type": proto or "tcp",
                }
            )
    return ports


def summary(engine, record: dict, size: bool = False) -> dict:
    state = record["State"]
    entry = {
        "Id": record["Id"],
        "Names": [record["Name"]],
        "Image": record["Config"].get("Image") or record["Image"],
        "ImageID": record["Image"],
        "Command": _command(record),
        "Created": int(parse_rfc3339(record["Created"])),
        "Ports": _ports(record),
        "Labels": record["Config"].get("Labels") or {},
        "State": state["Status"],
        "Status": status_text(state),
        "HostConfig": {"NetworkMode": record["HostConfig"].get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": record["NetworkSettings"].get("Networks") or {}},
        "Mounts": record.get("Mounts") or [],
    }
    if size:
        entry["SizeRw"], entry["SizeRootFs"] = engine.container_sizes(record)
    return entry


def _image_and_descendants(engine, refs: list[str]) -> set[str]:
    """As dockerd's ancestor filter: the images named and every image built on them."""
    found: set[str] = set()
    for ref in refs:
        try:
            found.add(engine.images.resolve(ref))
        except Exception:
            continue
    pending = list(found)
    while pending:
        for child in engine.images.children(pending.pop()):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def _match(engine, record: dict, key: str, value: str) -> bool:
    state = record["State"]
    labels = record["Config"].get("Labels") or {}
    if key == "id":
        return record["Id"].startswith(value)
    if key == "name":
        return value.lstrip("/") in record["Name"].lstrip("/")
    if key == "label":
        name, has_value, wanted = value.partition("=")
        return name in labels and (not has_value or labels[name] == wanted)
    if key == "status":
        if value not in _STATUSES:
            raise InvalidArgument(f"Invalid filter 'status={value}'")
        return state["Status"] == value
    if key == "exited":
        return state["Status"] == "exited" and str(state["ExitCode"]) == value
    if key in ("before", "since"):
        other = engine.containers.get(value)
        mine, theirs = parse_rfc3339(record["Created"]), parse_rfc3339(other["Created"])
        return mine < theirs if key == "before" else mine > theirs
    if key == "health":
        health = (state.get("Health") or {}).get("Status") or "none"
        return health == value
    if key == "volume":
        return any(
            m.get("Name") == value or m.get("Destination") == value or m.get("Source") == value
            for m in record.get("Mounts") or []
        )
    if key == "network":
        networks = record["NetworkSettings"].get("Networks") or {}
        return value in networks or any(
            n.get("NetworkID", "").startswith(value) for n in networks.values()
        )
    if key == "is-task":
        return value.lower() == "false"
    if key in ("publish", "expose"):
        port = value if "/" in value else f"{value}/tcp"
        if key == "expose":
            return port in (record["Config"].get("ExposedPorts") or {})
        bindings = (record["NetworkSettings"].get("Ports") or {}).get(port)
        return bool(bindings)
    return True


def list_containers(
    engine, *, all_: bool, limit: int | None, size: bool, wanted: dict[str, list[str]]
) -> list[dict]:
    unknown = set(wanted) - _FILTERS
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    records = engine.containers.all()
    if wanted.get("ancestor"):
        images = _image_and_descendants(engine, wanted["ancestor"])
        records = [r for r in records if r["Image"] in images]
    wanted = {key: values for key, values in wanted.items() if key != "ancestor"}
    if limit is not None and limit > 0:
        all_ = True
    out = []
    for record in records:
        if (
            not all_
            and not wanted.get("status")
            and record["State"]["Status"] != "running"
            and record["State"]["Status"] != "paused"
            and record["State"]["Status"] != "restarting"
        ):
            continue
        if all(
            any(_match(engine, record, key, v) for v in values) or not values
            for key, values in wanted.items()
        ):
            out.append(summary(engine, record, size))
    if limit is not None and limit > 0:
        out = out[:limit]
    return out


def inspect(engine, ref: str, size: bool = False) -> dict:
    record = dict(engine.containers.get(ref))
    record["ExecIDs"] = engine.exec_ids(record["Id"]) or None
    if size:
        record["SizeRw"], record["SizeRootFs"] = engine.container_sizes(record)
    return record
