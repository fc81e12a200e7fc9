"""A container's mounts: Binds, Mounts, VolumesFrom and the image's VOLUMEs resolved at create
into the `Mounts` list `docker inspect` shows, and that list turned into OCI mounts at start."""

from __future__ import annotations

import os
import posixpath

from dockyard.engine.errors import InvalidArgument
from dockyard.engine.volumes import VolumeService
from dockyard.runtime.rootfs import secure_join

_PROPAGATIONS = {"shared", "slave", "private", "rshared", "rslave", "rprivate"}
_MODES = _PROPAGATIONS | {"ro", "rw", "z", "Z", "nocopy", "copy"}


def parse_bind(spec: str) -> dict:
    """ "src:dst[:opts]" as the API's Mount object."""
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1]:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    source, target = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) == 3 and parts[2] else []
    if not target.startswith("/"):
        raise InvalidArgument(
            f"invalid volume specification: '{spec}': invalid mount config for type "
            f"\"bind\": invalid mount path: '{target}' mount path must be absolute"
        )
    unknown = [o for o in options if o not in _MODES]
    if unknown:
        raise InvalidArgument(f"invalid mode: {','.join(unknown)}")
    mount = {
        "Type": "bind" if source.startswith("/") else "volume",
        "Source": source,
        "Target": target,
        "ReadOnly": "ro" in options,
    }
    propagation = [o for o in options if o in _PROPAGATIONS]
    if propagation:
        mount["BindOptions"] = {"Propagation": propagation[-1]}
    if "nocopy" in options:
        mount["VolumeOptions"] = {"NoCopy": True}
    return mount


def _bind_mode(spec: str) -> str:
    """The mode field of a -v spec; a named volume without one shows "z", as in Docker."""
    parts = spec.split(":")
    if len(parts) == 3 and parts[2]:
        return parts[2]
    return "" if parts[0].startswith("/") else "z"


def _clean(path: str) -> str:
    return posixpath.normpath(path) if path else path


class Mounts:
    """Binds and tmpfs here; named and anonymous volumes through the volume service."""

    def __init__(self, volumes: VolumeService) -> None:
        self.volumes = volumes

    def requested(self, record: dict) -> list[dict]:
        """Binds and Mounts of the HostConfig as API Mount objects, checked."""
        host_config = record["HostConfig"]
        mounts = [parse_bind(b) for b in host_config.get("Binds") or []]
        for mount in host_config.get("Mounts") or []:
            if not isinstance(mount, dict):
                raise InvalidArgument("invalid mount: expected an object")
            if mount.get("Type") not in ("bind", "volume", "tmpfs"):
                raise InvalidArgument(f"mount type unknown: {mount.get('Type')!r}")
            if not str(mount.get("Target") or "").startswith("/"):
                raise InvalidArgument(
                    f"invalid mount target, must be an absolute path: {mount.get('Target')}"
                )
            if mount["Type"] == "bind" and not mount.get("Source"):
                raise InvalidArgument(
                    'invalid mount config for type "bind": field Source must not be empty'
                )
            mounts.append(dict(mount))
        targets = [_clean(m["Target"]) for m in mounts]
        if "/" in targets:
            raise InvalidArgument("invalid specification: destination can't be '/'")
        duplicates = {t for t in targets if targets.count(t) > 1}
        if duplicates:
            raise InvalidArgument(f"Duplicate mount point: {sorted(duplicates)[0]}")
        for spec in host_config.get("VolumesFrom") or []:
            _parse_volumes_from(spec)
        return mounts

    async def create(self, record: dict) -> None:
        """At create: the mount points, in Docker's order of precedence (VolumesFrom, then
        Binds and Mounts, then the image's VOLUMEs where nothing else is mounted); the
        volumes they name are created here."""
        host_config = record["HostConfig"]
        requested = self.requested(record)
        points: dict[str, dict] = {}
        for spec in host_config.get("VolumesFrom") or []:
            for point in self._volumes_from(spec):
                points[point["Destination"]] = point
        created: list[str] = []
        try:
            binds = host_config.get("Binds") or []
            for index, mount in enumerate(requested):
                from_bind = index < len(binds)
                if mount["Type"] == "bind":
                    _check_source(mount["Source"], create=from_bind)
                point = self._point(mount, _bind_mode(binds[index]) if from_bind else "", created)
                points[point["Destination"]] = point
            for path in record["Config"].get("Volumes") or {}:
                destination = _clean(path)
                if not destination.startswith("/") or destination == "/":
                    raise InvalidArgument(f"invalid volume specification: '{path}'")
                if destination not in points:
                    volume = self.volumes.create_anonymous()
                    created.append(volume["Name"])
                    points[destination] = _volume_point(volume, destination, "", True)
        except BaseException:
            self.volumes.remove_anonymous(created, record["Id"])
            raise
        record["Mounts"] = list(points.values())

    def _point(self, mount: dict, mode: str, created: list[str]) -> dict:
        destination = _clean(mount["Target"])
        read_write = not mount.get("ReadOnly")
        if mount["Type"] == "bind":
            return {
                "Type": "bind",
                "Source": mount["Source"],
                "Destination": destination,
                "Mode": mode,
                "RW": read_write,
                "Propagation": (mount.get("BindOptions") or {}).get("Propagation") or "rprivate",
            }
        if mount["Type"] == "tmpfs":
            return {
                "Type": "tmpfs",
                "Source": "",
                "Destination": destination,
                "Mode": "",
                "RW": read_write,
                "Propagation": "",
            }
        options = mount.get("VolumeOptions") or {}
        driver = options.get("DriverConfig") or {}
        if mount.get("Source"):
            volume = self.volumes.create(
                mount["Source"], driver.get("Name"), driver.get("Options"), options.get("Labels")
            )
        else:
            volume = self.volumes.create_anonymous(driver.get("Options"), options.get("Labels"))
            created.append(volume["Name"])
        return _volume_point(volume, destination, mode, read_write)

    def _volumes_from(self, spec: str) -> list[dict]:
        """Another container's volumes and binds, read-only if it or the spec says so."""
        name, read_only = _parse_volumes_from(spec)
        other = self.volumes.containers.get(name)
        out = []
        for point in other.get("Mounts") or []:
            if point.get("Type") not in ("volume", "bind"):
                continue
            copied = {**point, "Mode": "", "RW": bool(point.get("RW")) and not read_only}
            out.append(copied)
        return out

    async def prepare(self, record: dict, rootfs: str) -> list[dict]:
        """OCI mounts for the start of the container, parents before children."""
        requested = {_clean(m["Target"]): m for m in self.requested(record)}
        copy_targets = {
            target
            for target, m in requested.items()
            if m["Type"] == "volume" and not (m.get("VolumeOptions") or {}).get("NoCopy")
        } | {
            _clean(path)
            for path in record["Config"].get("Volumes") or {}
            if _clean(path) not in requested
        }
        out = []
        points = sorted(record.get("Mounts") or [], key=lambda p: p["Destination"].count("/"))
        for point in points:
            destination = point["Destination"]
            if point["Type"] == "tmpfs":
                out.append(_tmpfs(requested[destination], destination))
                continue
            source = point["Source"]
            if point["Type"] == "volume":
                copy_from = (
                    secure_join(rootfs, destination) if destination in copy_targets else None
                )
                source = await self.volumes.mount(point["Name"], record["Id"], point, copy_from)
            propagation = point.get("Propagation") or "rprivate"
            out.append(
                {
                    "destination": destination,
                    "type": "bind",
                    "source": source,
                    "options": ["rbind", propagation, "rw" if point.get("RW") else "ro"],
                }
            )
        return out

    async def release(self, record: dict) -> None:
        self.volumes.unmount(_volume_names(record), record["Id"])

    async def remove(self, record: dict, remove_volumes: bool) -> None:
        if remove_volumes:
            self.volumes.remove_anonymous(_volume_names(record), record["Id"])


def _check_source(source: str, create: bool) -> None:
    """A missing bind source: -v creates it, --mount refuses (as Docker)."""
    if os.path.exists(source):
        return
    if not create:
        raise InvalidArgument(
            f'invalid mount config for type "bind": bind source path does not exist: {source}'
        )
    os.makedirs(source, exist_ok=True)


def _parse_volumes_from(spec: str) -> tuple[str, bool]:
    """ "container[:ro|rw]" as (container, read-only)."""
    if not isinstance(spec, str) or not spec:
        raise InvalidArgument(f"invalid volumes-from specification: {spec!r}")
    name, _, mode = spec.partition(":")
    options = mode.split(",") if mode else []
    if any(o not in _PROPAGATIONS | {"ro", "rw", "z", "Z"} for o in options):
        raise InvalidArgument(f"invalid mode: {mode}")
    return name, "ro" in options


def _volume_point(volume: dict, destination: str, mode: str, read_write: bool) -> dict:
    return {
        "Type": "volume",
        "Name": volume["Name"],
        "Source": volume["Mountpoint"],
        "Destination": destination,
        "Driver": volume["Driver"],
        "Mode": mode,
        "RW": read_write,
        "Propagation": "",
    }


def _volume_names(record: dict) -> list[str]:
    return [p["Name"] for p in record.get("Mounts") or [] if p.get("Type") == "volume"]


def _tmpfs(mount: dict, destination: str) -> dict:
    tmpfs = mount.get("TmpfsOptions") or {}
    options = ["nosuid", "nodev", "noexec"]
    if tmpfs.get("SizeBytes"):
        options.append(f"size={tmpfs['SizeBytes']}")
    if tmpfs.get("Mode"):
        options.append(f"mode={tmpfs['Mode']:o}")
    if mount.get("ReadOnly"):
        options.append("ro")
    return {"destination": destination, "type": "tmpfs", "source": "tmpfs", "options": options}
