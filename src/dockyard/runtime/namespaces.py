"""Namespaces: which to create, which to join, and entering them in the right order.

Runs in the first child after fork. The user namespace comes first (it owns the others); the
mount namespace is joined last (joining it moves our root). A new pid namespace only applies to
children, so the caller forks once more afterwards: that child is the container's pid 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from dockyard.runtime import linux
from dockyard.runtime.errors import OCIError

# Spec type -> (clone flag, name under /proc/<pid>/ns).
KINDS: dict[str, tuple[int, str]] = {
    "user": (linux.CLONE_NEWUSER, "user"),
    "pid": (linux.CLONE_NEWPID, "pid"),
    "network": (linux.CLONE_NEWNET, "net"),
    "ipc": (linux.CLONE_NEWIPC, "ipc"),
    "uts": (linux.CLONE_NEWUTS, "uts"),
    "cgroup": (linux.CLONE_NEWCGROUP, "cgroup"),
    "mount": (linux.CLONE_NEWNS, "mnt"),
}
_JOIN_ORDER = ["user", "ipc", "uts", "network", "pid", "cgroup", "mount"]


class NamespacePlan:
    def __init__(self) -> None:
        self.new: set[str] = set()
        self.join: dict[str, int] = {}  # kind -> open fd of the namespace

    @classmethod
    def from_spec(cls, namespaces: list[dict]) -> NamespacePlan:
        plan = cls()
        for entry in namespaces:
            kind = entry.get("type")
            if kind == "time":
                raise OCIError("time namespaces are not supported")
            if kind not in KINDS:
                raise OCIError(f"unknown namespace type {kind!r}")
            if kind in plan.new or kind in plan.join:
                raise OCIError(f"malformed spec file: duplicated ns {kind!r}")
            path = entry.get("path")
            if path:
                try:
                    plan.join[kind] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError as error:
                    raise OCIError(f"namespace {kind} path {path}: {error.strerror}") from None
            else:
                plan.new.add(kind)
        return plan

    @classmethod
    def of_process(cls, pid: int, kinds: list[str]) -> NamespacePlan:
        """Join every namespace of `kinds` that `pid` is in (for exec)."""
        plan = cls()
        for kind in kinds:
            name = KINDS[kind][1]
            # Joining a namespace we are already in is refused for user namespaces.
            if (
                kind == "user"
                and os.stat(f"/proc/{pid}/ns/user").st_ino == os.stat("/proc/self/ns/user").st_ino
            ):
                continue
            plan.join[kind] = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        return plan

    def close(self) -> None:
        for fd in self.join.values():
            os.close(fd)
        self.join.clear()

    def enter(self, map_user_namespace: Callable[[], None]) -> bool:
        """Join and create namespaces in the calling process.

        `map_user_namespace` runs after a new user namespace exists (the parent writes the
        id maps). Returns whether the caller must fork to enter the pid namespace.
        """
        if "user" in self.join:
            linux.setns(self.join["user"], linux.CLONE_NEWUSER)
            _become_root()
        elif "user" in self.new:
            linux.unshare(linux.CLONE_NEWUSER)
            map_user_namespace()
            _become_root()
        for kind in _JOIN_ORDER:
            if kind != "user" and kind in self.join:
                linux.setns(self.join[kind], KINDS[kind][0])
        flags = 0
        for kind in self.new - {"user"}:
            flags |= KINDS[kind][0]
        if flags:
            linux.unshare(flags)
        return "pid" in self.new or "pid" in self.join


def _become_root() -> None:
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def write_id_maps(pid: int, uid_mappings: list[dict], gid_mappings: list[dict]) -> None:
    for name, mappings in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
        lines = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings)
        if not lines:
            raise OCIError(f"user namespace without {name.replace('_', ' ')}pings")
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(lines)
