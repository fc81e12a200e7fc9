"""`User` of a container ("name", "uid", "name:group", "uid:gid") resolved in its own
/etc/passwd and /etc/group, as Docker does at start."""

from __future__ import annotations

from dockyard.engine.errors import EngineError
from dockyard.runtime.rootfs import secure_join


def _entries(rootfs: str, name: str) -> list[list[str]]:
    try:
        with open(secure_join(rootfs, f"/etc/{name}"), errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and ":" in line]
    except OSError:
        return []


def resolve(rootfs: str, user: str, group_add: list[str]) -> tuple[int, int, list[int]]:
    """(uid, gid, supplementary gids) for `user`; EngineError with Docker's text if unknown."""
    name, _, group = (user or "").partition(":")
    passwd = _entries(rootfs, "passwd")
    groups = _entries(rootfs, "group")
    uid, gid, login = 0, 0, "root"
    if name:
        match = [e for e in passwd if len(e) >= 4 and (e[0] == name or e[2] == name)]
        if match:
            login, uid, gid = match[0][0], int(match[0][2]), int(match[0][3])
        elif name.isdigit():
            uid, login = int(name), ""
            gid = 0
        else:
            raise EngineError(f"unable to find user {name}: no matching entries in passwd file")
    else:
        match = [e for e in passwd if len(e) >= 4 and e[2] == "0"]
        if match:
            login, gid = match[0][0], int(match[0][3])
    if group:
        gid = _group_id(groups, group)
    supplementary = [
        int(e[2])
        for e in groups
        if len(e) >= 4 and login and login in e[3].split(",") and e[2].isdigit()
    ]
    supplementary += [_group_id(groups, g) for g in group_add]
    return uid, gid, sorted(set(supplementary))


def _group_id(groups: list[list[str]], group: str) -> int:
    match = [e for e in groups if len(e) >= 3 and (e[0] == group or e[2] == group)]
    if match:
        return int(match[0][2])
    if group.isdigit():
        return int(group)
    raise EngineError(f"unable to find group {group}: no matching entries in group file")


def home_directory(rootfs: str, uid: int) -> str:
    for entry in _entries(rootfs, "passwd"):
        if len(entry) >= 6 and entry[2] == str(uid):
            return entry[5]
    return "/"
