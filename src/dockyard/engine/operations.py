"""The container operations beside the lifecycle: pause, unpause, rename, update, top, changes,
prune."""

from __future__ import annotations

import asyncio
import json
import tempfile

from dockyard.engine import containers as records
from dockyard.engine import names
from dockyard.engine.errors import Conflict, EngineError, InvalidArgument, NotFound
from dockyard.engine.ocispec import resources
from dockyard.engine.timefmt import parse_rfc3339, parse_timestamp
from dockyard.runtime.cgroups import Cgroup


def _publish(engine, record: dict, action: str, **extra: str) -> None:
    engine.lifecycle._publish(record, action, **extra)


def cgroup_of(engine, record: dict) -> Cgroup:
    """The container's cgroup, where lifecycle puts it (cgroupsPath of its spec)."""
    return Cgroup(f"/{engine.config.cgroup_parent}/{record['Id']}")


def _running(record: dict) -> None:
    if not record["State"]["Running"]:
        raise Conflict(f"Container {record['Id']} is not running")


# -- pause, unpause ---------------------------------------------------------------------------


async def pause(engine, ref: str) -> None:
    record = engine.containers.get(ref)
    _running(record)
    if record["State"]["Paused"]:
        raise Conflict(f"Container {record['Id']} is already paused")
    if record["State"]["Restarting"]:
        raise Conflict(f"Container {record['Id']} is restarting, wait until it is running")
    await engine.runtime_command(record, "pause")
    record["State"].update(Paused=True, Status="paused")
    engine.containers.save(record)
    _publish(engine, record, "pause")


async def unpause(engine, ref: str) -> None:
    record = engine.containers.get(ref)
    if not record["State"]["Paused"]:
        raise Conflict(f"Container {record['Id']} is not paused")
    await engine.runtime_command(record, "resume")
    record["State"].update(Paused=False, Status="running")
    engine.containers.save(record)
    _publish(engine, record, "unpause")


# -- rename -----------------------------------------------------------------------------------


def rename(engine, ref: str, new_name: str) -> None:
    if not ref or not new_name:
        raise InvalidArgument("Neither old nor new names may be empty")
    record = engine.containers.get(ref)
    new_name = names.validate(new_name.lstrip("/"))
    old_name = record["Name"]
    if old_name == "/" + new_name:
        raise InvalidArgument("Renaming a container with the same name as its current name")
    records.check_name(engine.containers, new_name)
    record["Name"] = "/" + new_name
    engine.containers.save(record)
    _publish(engine, record, "rename", oldName=old_name)


# -- update -----------------------------------------------------------------------------------

_UPDATE_KEYS = {
    "BlkioWeight": int,
    "CpuShares": int,
    "CpuPeriod": int,
    "CpuQuota": int,
    "CpuRealtimePeriod": int,
    "CpuRealtimeRuntime": int,
    "CpusetCpus": str,
    "CpusetMems": str,
    "Memory": int,
    "MemoryReservation": int,
    "MemorySwap": int,
    "NanoCpus": int,
    "PidsLimit": int,
    "KernelMemory": int,
}


async def update(engine, ref: str, body: dict) -> list[str]:
    """New resource limits (applied at once to a running container) and restart policy."""
    record = engine.containers.get(ref)
    host_config = record["HostConfig"]
    changes = {}
    for key, kind in _UPDATE_KEYS.items():
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidArgument(f"json: cannot unmarshal into Go struct field UpdateConfig.{key}")
        if value or key in ("PidsLimit",):
            changes[key] = value
    policy = body.get("RestartPolicy")
    if policy is not None and not isinstance(policy, dict):
        raise InvalidArgument("json: cannot unmarshal into Go struct field RestartPolicy")
    if policy and policy.get("Name"):
        if host_config.get("AutoRemove"):
            raise InvalidArgument(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
            )
        if policy["Name"] not in ("no", "always", "unless-stopped", "on-failure"):
            raise InvalidArgument(f"invalid restart policy '{policy['Name']}'")
    memory, swap = changes.get("Memory"), host_config.get("MemorySwap") or 0
    if memory and swap > 0 and "MemorySwap" not in changes and memory > swap:
        raise InvalidArgument(
            "Memory limit should be smaller than already set memoryswap limit, "
            "update the memoryswap at the same time"
        )
    updated = {**host_config, **changes}
    if "NanoCpus" in changes:
        updated.update(CpuQuota=0, CpuPeriod=0)
    new_resources = resources(updated, [])
    new_resources.pop("devices")  # the device rules stay as they are
    if record["State"]["Running"] and changes:
        await _apply_resources(engine, record, new_resources)
    host_config.update(updated)
    if policy and policy.get("Name"):
        host_config["RestartPolicy"] = {
            "Name": policy["Name"],
            "MaximumRetryCount": int(policy.get("MaximumRetryCount") or 0),
        }
    engine.containers.save(record)
    _publish(engine, record, "update")
    return []


async def _apply_resources(engine, record: dict, new_resources: dict) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=engine.config.exec_root) as f:
        json.dump(new_resources, f)
        f.flush()
        try:
            await engine.runtime_command(record, "update", "--resources", f.name)
        except EngineError as error:
            raise EngineError(f"Cannot update container {record['Id']}: {error}") from None


# -- top --------------------------------------------------------------------------------------


async def top(engine, ref: str, ps_args: str) -> dict:
    record = engine.containers.get(ref)
    _running(record)
    if record["State"]["Restarting"]:
        raise Conflict(f"Container {record['Id']} is restarting, wait until it is running")
    pids = set(cgroup_of(engine, record).pids())
    process = await asyncio.create_subprocess_exec(
        "ps",
        *(ps_args.split() or ["-ef"]),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output, errors = await process.communicate()
    if process.returncode != 0:
        raise EngineError(f"ps: {errors.decode(errors='replace').strip()}")
    return parse_ps(output.decode(errors="replace"), pids)


def parse_ps(output: str, pids: set[int]) -> dict:
    """Docker's {"Titles", "Processes"}: the rows of `ps` whose PID is in the container."""
    lines = output.splitlines()
    if not lines:
        raise EngineError("Couldn't find PID field in ps output")
    titles = lines[0].split()
    if "PID" not in titles:
        raise EngineError("Couldn't find PID field in ps output")
    column = titles.index("PID")
    processes = []
    for line in lines[1:]:
        fields = line.split(None, len(titles) - 1)
        if len(fields) <= column:
            continue
        try:
            pid = int(fields[column])
        except ValueError:
            raise EngineError(f"Unexpected pid '{fields[column]}'") from None
        if pid in pids:
            processes.append(fields)
    return {"Titles": titles, "Processes": processes}


# -- changes ----------------------------------------------------------------------------------


# The mount points of the files the daemon binds over (hostname, hosts, resolv.conf) are made
# in the container's layer; dockerd keeps them in an "init" layer below it, so `docker diff`
# never shows them, nor /etc as changed for their sake.
_INIT_LAYER_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")
MODIFIED = 0  # the kinds of a change, as the API numbers them: 0 modified, 1 added, 2 deleted


async def changes(engine, ref: str) -> list[dict]:
    record = engine.containers.get(ref)
    found = await asyncio.to_thread(engine.snapshots.changes, record["Id"])
    kept = [(path, kind) for path, kind in found if path not in _INIT_LAYER_FILES]
    if len(kept) < len(found) and not any(path.startswith("/etc/") for path, _ in kept):
        kept = [(path, kind) for path, kind in kept if (path, kind) != ("/etc", MODIFIED)]
    return [{"Path": path, "Kind": kind} for path, kind in kept]


# -- prune ------------------------------------------------------------------------------------


def _prune_matcher(wanted: dict[str, list[str]]):
    for key in wanted:
        if key not in ("until", "label", "label!"):
            raise InvalidArgument(f"Invalid filter '{key}'")
    until = None
    if wanted.get("until"):
        try:
            until = parse_timestamp(wanted["until"][0])
        except ValueError as error:
            raise InvalidArgument(str(error)) from None

    def label_matches(labels: dict, condition: str) -> bool:
        key, sep, value = condition.partition("=")
        return key in labels and (not sep or labels[key] == value)

    def matches(record: dict) -> bool:
        labels = record["Config"].get("Labels") or {}
        if until is not None and parse_rfc3339(record["Created"]) >= until:
            return False
        if not all(label_matches(labels, c) for c in wanted.get("label", [])):
            return False
        return not any(label_matches(labels, c) for c in wanted.get("label!", []))

    return matches


async def prune(engine, wanted: dict[str, list[str]]) -> dict:
    matches = _prune_matcher(wanted)
    deleted, reclaimed = [], 0
    for record in engine.containers.all():
        state = record["State"]
        if state["Running"] or state["Paused"] or state["Restarting"] or not matches(record):
            continue
        size, _ = await asyncio.to_thread(engine.container_sizes, record)
        try:
            await engine.lifecycle.remove(record["Id"])
        except (NotFound, Conflict):
            continue  # removed or started meanwhile
        deleted.append(record["Id"])
        reclaimed += size
    engine.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
    return {"ContainersDeleted": deleted or None, "SpaceReclaimed": reclaimed}
