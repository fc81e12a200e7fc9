"""Volumes of the `local` driver: records in SQLite, data under `<data root>/volumes/<name>/_data`.

A volume created with `type`/`device`/`o` options (tmpfs, bind, any filesystem mount(2) takes)
has that mount placed on its `_data` while a running container uses it, as Docker's local
driver does. Which containers use a volume is read from the container records' `Mounts`, so it
is never out of step with them, across restarts too.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path

from dockyard.engine.containers import ContainerStore
from dockyard.engine.errors import Conflict, EngineError, InvalidArgument, NotFound
from dockyard.engine.events import EventBus
from dockyard.runtime import linux
from dockyard.runtime.rootfs import parse_options
from dockyard.store import Database

DRIVER = "local"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_OPTIONS = {"type", "device", "o", "size"}
# An option that needs others to mean something (Docker's local driver's rule).
_NEEDS = {"device": ("type",), "type": ("device",), "o": ("device",)}
_LIST_FILTERS = {"name", "label", "dangling", "driver"}
_PRUNE_FILTERS = {"label", "label!", "all"}
_TRUE, _FALSE = {"1", "true"}, {"0", "false"}
_OCTAL = re.compile(r"\\([0-7]{3})")  # mountinfo escapes space, tab, newline, backslash


def _op_error(kind: type[EngineError], op: str, name: str, message: str) -> EngineError:
    """Docker's OpErr wording: "<op> <name>: <message>"."""
    return kind(f"{op} {name}: {message}")


def _check_name(name: str) -> None:
    if len(name) == 1:
        raise _op_error(
            InvalidArgument,
            "create",
            name,
            "volume name is too short, names should be at least two alphanumeric characters",
        )
    if not _NAME.match(name):
        raise _op_error(
            InvalidArgument,
            "create",
            name,
            f'"{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path",
        )


def _check_options(name: str, options: dict[str, str]) -> None:
    for key, value in options.items():
        if key not in _OPTIONS or not isinstance(value, str):
            raise _op_error(InvalidArgument, "create", name, f'invalid option key: "{key}"')
    for key, needed in _NEEDS.items():
        for other in needed:
            if key in options and other not in options:
                raise _op_error(
                    InvalidArgument, "create", name, f'missing required option: "{other}"'
                )
    if "size" in options:
        # Docker takes `size` only on a filesystem with project quotas (xfs); we have none.
        raise _op_error(
            InvalidArgument, "create", name, "quota size requested but no quota support"
        )


def _check_labels(labels: object) -> dict[str, str] | None:
    if labels is None:
        return None
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidArgument("invalid labels: expected an object of strings")
    return labels


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _tree_size(root: str) -> int:
    """Apparent size, each hard-linked inode counted once (Docker's directory.Size)."""
    total, seen = 0, set()
    for directory, _dirs, files in os.walk(root):
        for name in files:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


def _matches(pattern: str, text: str) -> bool:
    """Docker's filter.Match: the value is a regular expression, or else a substring."""
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return pattern in text


def _label_matches(wanted: str, labels: dict[str, str]) -> bool:
    key, eq, value = wanted.partition("=")
    return key in labels and (not eq or labels[key] == value)


class VolumeService:
    def __init__(
        self, db: Database, root: Path, events: EventBus, containers: ContainerStore
    ) -> None:
        self.db = db
        self.root = root
        self.events = events
        self.containers = containers
        root.mkdir(exist_ok=True, mode=0o701)
        # container ID -> volumes it mounted: for unmount events, once per start.
        self._mounted: dict[str, set[str]] = {}

    # -- records ------------------------------------------------------------------------------

    def _data(self, name: str) -> str:
        return str(self.root / name / "_data")

    def _inspect(self, row) -> dict:
        return {
            "CreatedAt": row["created"],
            "Driver": row["driver"],
            "Labels": json.loads(row["labels"]),
            "Mountpoint": self._data(row["name"]),
            "Name": row["name"],
            "Options": json.loads(row["options"]),
            "Scope": "local",
        }

    def _row(self, name: str):
        rows = self.db.query("SELECT * FROM volumes WHERE name = ?", (name,))
        if not rows:
            raise NotFound(f"get {name}: no such volume")
        return rows[0]

    def get(self, name: str) -> dict:
        return self._inspect(self._row(name))

    def list(self, wanted: dict[str, list[str]] | None = None) -> list[dict]:
        wanted = wanted or {}
        unknown = set(wanted) - _LIST_FILTERS
        if unknown:
            raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
        dangling = None
        for value in wanted.get("dangling", []):
            if value.lower() not in _TRUE | _FALSE:
                raise InvalidArgument(f"invalid filter 'dangling={value}'")
            dangling = value.lower() in _TRUE
        used = self._used()
        out = []
        for row in self.db.query("SELECT * FROM volumes ORDER BY name"):
            volume = self._inspect(row)
            labels = volume["Labels"] or {}
            if not all(_matches(p, volume["Name"]) for p in wanted.get("name", [])):
                continue
            if not all(_matches(p, volume["Driver"]) for p in wanted.get("driver", [])):
                continue
            if not all(_label_matches(w, labels) for w in wanted.get("label", [])):
                continue
            if dangling is not None and (volume["Name"] not in used) != dangling:
                continue
            out.append(volume)
        return out

    def create(
        self,
        name: str | None = None,
        driver: str | None = None,
        options: dict | None = None,
        labels: dict | None = None,
    ) -> dict:
        """A new volume, or the existing one of that name (as Docker, whatever the options)."""
        if driver not in (None, "", DRIVER):
            raise NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')
        if not name:
            name = secrets.token_hex(32)
        rows = self.db.query("SELECT * FROM volumes WHERE name = ?", (name,))
        if rows:
            return self._inspect(rows[0])
        _check_name(name)
        if options is not None and not isinstance(options, dict):
            raise InvalidArgument("invalid driver options: expected an object of strings")
        _check_options(name, options or {})
        labels = _check_labels(labels)
        os.makedirs(self._data(name), mode=0o755, exist_ok=True)
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO volumes (name, driver, created, labels, options) "
                "VALUES (?, ?, ?, ?, ?)",
                (name, DRIVER, _now(), json.dumps(labels), json.dumps(options)),
            )
        self.events.publish("volume", "create", name, {"driver": DRIVER})
        return self.get(name)

    def create_anonymous(self, options: dict | None = None, labels: dict | None = None) -> dict:
        return self.create(None, None, options, {**(labels or {}), ANONYMOUS_LABEL: ""})

    def users(self, name: str, running_only: bool = False) -> list[str]:
        """IDs of the containers whose mounts reference the volume."""
        return [
            record["Id"]
            for record in self.containers.all()
            if (record["State"]["Running"] or not running_only)
            and any(
                m.get("Type") == "volume" and m.get("Name") == name
                for m in record.get("Mounts") or []
            )
        ]

    def _used(self) -> set[str]:
        return {
            m.get("Name")
            for record in self.containers.all()
            for m in record.get("Mounts") or []
            if m.get("Type") == "volume"
        }

    def usage(self, name: str) -> dict:
        """`UsageData` as `system df` shows it."""
        self._row(name)
        return {"Size": _tree_size(self._data(name)), "RefCount": len(self.users(name))}

    def remove(self, name: str, force: bool = False) -> None:
        try:
            row = self._row(name)
        except NotFound:
            if force:
                return
            raise
        users = self.users(name)
        if users:
            raise _op_error(Conflict, "remove", name, f"volume is in use - [{' '.join(users)}]")
        self._destroy(row)

    def prune(self, wanted: dict[str, list[str]]) -> dict:
        unknown = set(wanted) - _PRUNE_FILTERS
        if unknown:
            raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
        # API 1.41 prunes every unused volume; `all=false` (a newer client) keeps named ones.
        only_anonymous = any(v.lower() in _FALSE for v in wanted.get("all", []))
        used = self._used()
        deleted, reclaimed = [], 0
        for volume in self.list():
            labels = volume["Labels"] or {}
            if volume["Name"] in used:
                continue
            if only_anonymous and ANONYMOUS_LABEL not in labels:
                continue
            if not all(_label_matches(w, labels) for w in wanted.get("label", [])):
                continue
            if any(_label_matches(w, labels) for w in wanted.get("label!", [])):
                continue
            size = _tree_size(volume["Mountpoint"])
            try:
                self.remove(volume["Name"])
            except EngineError:
                continue
            deleted.append(volume["Name"])
            reclaimed += size
        self.events.publish("volume", "prune", "", {"reclaimed": str(reclaimed)})
        return {"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed}

    # -- use by containers ------------------------------------------------------------------

    async def mount(self, name: str, container_id: str, point: dict, copy_from: str | None) -> str:
        """The volume ready for a container's start: its device mounted, the image's content
        copied up into it when it is empty; returns the host path to bind."""
        volume = self.get(name)
        data = volume["Mountpoint"]
        os.makedirs(data, mode=0o755, exist_ok=True)
        options = volume["Options"] or {}
        if options.get("device") and not _mounts_under(data):
            _mount_device(options, data)
        if copy_from is not None and os.path.isdir(copy_from) and not os.listdir(data):
            await _copy_up(copy_from, data)
        self._mounted.setdefault(container_id, set()).add(name)
        self.events.publish(
            "volume",
            "mount",
            name,
            {
                "container": container_id,
                "destination": point["Destination"],
                "driver": volume["Driver"],
                "propagation": point.get("Propagation") or "",
                "read/write": str(bool(point.get("RW"))).lower(),
            },
        )
        return data

    def unmount(self, names: list[str], container_id: str) -> None:
        """After a container stopped: devices no running container uses come off."""
        mounted = self._mounted.pop(container_id, set())
        for name in names:
            if name in mounted:
                self.events.publish(
                    "volume", "unmount", name, {"container": container_id, "driver": DRIVER}
                )
            if not [u for u in self.users(name, running_only=True) if u != container_id]:
                self._unmount_device(name)

    def remove_anonymous(self, names: list[str], container_id: str) -> None:
        """`rm -v` and `--rm`: the container's anonymous volumes no other container uses."""
        for name in names:
            try:
                row = self._row(name)
            except NotFound:
                continue
            if ANONYMOUS_LABEL not in (json.loads(row["labels"]) or {}):
                continue
            if [u for u in self.users(name) if u != container_id]:
                continue
            try:
                self._destroy(row)
            except EngineError:
                continue

    def _destroy(self, row) -> None:
        name = row["name"]
        self._unmount_device(name)
        # Never delete through a mount: a bind-type volume's _data is the user's directory.
        if _mounts_under(str(self.root / name)):
            raise _op_error(Conflict, "remove", name, "volume is still mounted")
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM volumes WHERE name = ?", (name,))
            self.db.after_commit(lambda: shutil.rmtree(self.root / name, ignore_errors=True))
        self.events.publish("volume", "destroy", name, {"driver": row["driver"]})

    def _unmount_device(self, name: str) -> None:
        data = self._data(name)
        for point in reversed(_mounts_under(data)):
            try:
                linux.umount(point, linux.MNT_DETACH)
            except OSError as error:
                raise EngineError(f"unmount volume {name}: {error}") from None


def _mounts_under(path: str) -> list[str]:
    """Mount points at or below `path`, from mountinfo: os.path.ismount cannot see a bind
    mount of a directory of the same filesystem."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        points = [_OCTAL.sub(lambda m: chr(int(m[1], 8)), line.split()[4]) for line in f]
    return [p for p in points if p == path or p.startswith(path + "/")]


def _mount_device(options: dict[str, str], target: str) -> None:
    """mount(2) as Docker's local driver does: `o` split into flags and filesystem data."""
    parsed = parse_options(options.get("o", "").split(",") if options.get("o") else [])
    fstype = options.get("type") or None
    device = options["device"]
    try:
        linux.mount(device, target, fstype, parsed.flags, parsed.data or None)
        # A bind ignores other flags (ro, nosuid...) until remounted with them.
        extra = parsed.flags & ~(linux.MS_BIND | linux.MS_REC)
        if parsed.flags & linux.MS_BIND and extra:
            linux.mount(None, target, None, extra | linux.MS_BIND | linux.MS_REMOUNT, None)
    except OSError as error:
        raise EngineError(
            f"error while mounting volume '{target}': failed to mount local volume: "
            f"mount {device}:{target}, flags: {parsed.flags:#x}, data: {parsed.data}: "
            f"{os.strerror(error.errno or 0).lower()}"
        ) from None


async def _copy_up(source: str, target: str) -> None:
    """The image's content at the mount path into the empty volume, ownership, modes, links
    and times kept (GNU cp -a), and the directory's own owner and mode, as Docker does."""
    process = await asyncio.create_subprocess_exec(
        "cp",
        "-a",
        "--",
        f"{source}/.",
        f"{target}/",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise EngineError(f"copying image content into volume: {stderr.decode().strip()}")
    info = os.stat(source)
    os.chown(target, info.st_uid, info.st_gid)
    os.chmod(target, info.st_mode & 0o7777)
