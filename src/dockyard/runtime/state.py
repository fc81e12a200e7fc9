"""Where the runtime keeps each container's state, and how it tells the container's status.

Layout under the state root (`--root`, default /run/dockyard-runtime):
    <id>/state.json   what `state` reports, plus what later commands need (spec, cgroup path)
    <id>/exec.fifo    exists between create and start: the init blocks writing to it
"""

from __future__ import annotations

import json
import os
import time

from dockyard.runtime.errors import ContainerNotFound, OCIError

DEFAULT_ROOT = "/run/dockyard-runtime"
OCI_VERSION = "1.0.2-dev"
_ID_PUNCTUATION = set("_+-.")


class ContainerState:
    """What the runtime remembers of a container (a plain class: dataclasses cost 15 ms
    of imports on every runtime start)."""

    FIELDS = ("id", "bundle", "rootfs", "pid", "start_time", "created", "cgroup_path", "spec")

    def __init__(
        self,
        id: str,
        bundle: str,
        rootfs: str,
        pid: int,
        start_time: int,  # field 22 of /proc/<pid>/stat, to notice a recycled pid
        created: str,
        cgroup_path: str,
        spec: dict,
        owner: str = "",
        annotations: dict[str, str] | None = None,
    ):
        self.id = id
        self.bundle = bundle
        self.rootfs = rootfs
        self.pid = pid
        self.start_time = start_time
        self.created = created
        self.cgroup_path = cgroup_path
        self.spec = spec
        self.owner = owner
        self.annotations = annotations or {}

    def to_json(self) -> dict:
        return {name: getattr(self, name) for name in (*self.FIELDS, "owner", "annotations")}


def validate_id(container_id: str) -> None:
    valid = all(c.isalnum() or c in _ID_PUNCTUATION for c in container_id)
    if not container_id or not valid or container_id in (".", ".."):
        raise OCIError(f"invalid id format: {container_id}")


def now_rfc3339() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


def process_start_time(pid: int) -> int | None:
    """Start time of `pid` in clock ticks, or None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


class StateDir:
    """One container's directory under the state root."""

    def __init__(self, root: str, container_id: str):
        validate_id(container_id)
        self.id = container_id
        self.path = os.path.join(root, container_id)
        self.state_file = os.path.join(self.path, "state.json")
        self.fifo = os.path.join(self.path, "exec.fifo")

    def load(self) -> ContainerState:
        try:
            with open(self.state_file) as f:
                return ContainerState(**json.load(f))
        except FileNotFoundError:
            raise ContainerNotFound(self.id) from None

    def save(self, state: ContainerState) -> None:
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(state.to_json()))  # one C-encoded string: dump() encodes in Python
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.state_file)

    def status(self, state: ContainerState, frozen: bool) -> str:
        if process_start_time(state.pid) != state.start_time:
            return "stopped"
        if frozen:  # before "created": runc lets a created container be paused too
            return "paused"
        return "created" if os.path.exists(self.fifo) else "running"


def report(state: ContainerState, status: str) -> dict:
    """The JSON `state` prints, in runc's shape (pid 0 once stopped)."""
    out = {
        "ociVersion": state.spec.get("ociVersion", OCI_VERSION),
        "id": state.id,
        "pid": 0 if status == "stopped" else state.pid,
        "status": status,
        "bundle": state.bundle,
        "rootfs": state.rootfs,
        "created": state.created,
        "owner": state.owner,
    }
    if state.annotations:
        out["annotations"] = state.annotations
    return out


def hook_state(state: ContainerState, status: str) -> dict:
    """The OCI `State` a hook reads on stdin: the runtime spec's fields only (no rootfs,
    created or owner, unlike `state`), and no pid once stopped, as runc sends it."""
    out: dict = {"ociVersion": state.spec.get("ociVersion", OCI_VERSION), "id": state.id}
    out["status"] = status
    if status != "stopped" and state.pid:
        out["pid"] = state.pid
    out["bundle"] = state.bundle
    if state.annotations:
        out["annotations"] = state.annotations
    return out


def list_ids(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.exists(os.path.join(root, n, "state.json")))
