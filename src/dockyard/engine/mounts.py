"""A container's mounts: Binds, Mounts and volumes turned into OCI mounts, and the Mounts
list `docker inspect` shows."""

from __future__ import annotations

import os

from dockyard.engine.errors import InvalidArgument

_PROPAGATIONS = {"shared", "slave", "private", "rshared", "rslave", "rprivate"}


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
    unknown = [
        o for o in options if o not in _PROPAGATIONS | {"ro", "rw", "z", "Z", "nocopy", "copy"}
    ]
    if unknown:
        raise InvalidArgument(f"invalid mode: {','.join(unknown)}")
    return mount


class Mounts:
    """Binds and tmpfs here; named and anonymous volumes through the volume service."""

    def __init__(self, volumes=None) -> None:
        self.volumes = volumes

    def requested(self, record: dict) -> list[dict]:
        host_config = record["HostConfig"]
        mounts = [parse_bind(b) for b in host_config.get("Binds") or []]
        for mount in host_config.get("Mounts") or []:
            if mount.get("Type") not in ("bind", "volume", "tmpfs"):
                raise InvalidArgument(f"mount type unknown: {mount.get('Type')!r}")
            if not mount.get("Target", "").startswith("/"):
                raise InvalidArgument(
                    f"invalid mount target, must be an absolute path: {mount.get('Target')}"
                )
            mounts.append(dict(mount))
        targets = [m["Target"] for m in mounts]
        duplicates = {t for t in targets if targets.count(t) > 1}
        if duplicates:
            raise InvalidArgument(f"Duplicate mount point: {sorted(duplicates)[0]}")
        return mounts

    async def create(self, record: dict) -> None:
        """At create: check the requests; volumes get created and recorded."""
        mounts = self.requested(record)
        for mount in mounts:
            if mount["Type"] == "bind" and not os.path.exists(mount["Source"]):
                if mount in [parse_bind(b) for b in record["HostConfig"].get("Binds") or []]:
                    os.makedirs(mount["Source"], exist_ok=True)  # -v creates a missing source
                else:
                    raise InvalidArgument(
                        f'invalid mount config for type "bind": bind source path does not '
                        f"exist: {mount['Source']}"
                    )
        if self.volumes is not None:
            await self.volumes.create_for(record, mounts)
        elif any(m["Type"] == "volume" for m in mounts):
            raise InvalidArgument("volumes are not available")
        record["Mounts"] = [_inspect_entry(m) for m in mounts if m["Type"] != "volume"] + (
            record.get("Mounts") or []
        )

    async def prepare(self, record: dict, rootfs: str) -> list[dict]:
        """OCI mounts for the start of the container."""
        out = []
        for mount in self.requested(record):
            if mount["Type"] == "bind":
                propagation = (mount.get("BindOptions") or {}).get("Propagation") or "rprivate"
                options = ["rbind", propagation, "ro" if mount.get("ReadOnly") else "rw"]
                out.append(
                    {
                        "destination": mount["Target"],
                        "type": "bind",
                        "source": mount["Source"],
                        "options": options,
                    }
                )
            elif mount["Type"] == "tmpfs":
                tmpfs = mount.get("TmpfsOptions") or {}
                options = ["nosuid", "nodev", "noexec"]
                if tmpfs.get("SizeBytes"):
                    options.append(f"size={tmpfs['SizeBytes']}")
                if tmpfs.get("Mode"):
                    options.append(f"mode={tmpfs['Mode']:o}")
                if mount.get("ReadOnly"):
                    options.append("ro")
                out.append(
                    {
                        "destination": mount["Target"],
                        "type": "tmpfs",
                        "source": "tmpfs",
                        "options": options,
                    }
                )
        if self.volumes is not None:
            out += await self.volumes.prepare_for(record, rootfs)
        return out

    async def release(self, record: dict) -> None:
        if self.volumes is not None:
            await self.volumes.release_for(record)

    async def remove(self, record: dict, remove_volumes: bool) -> None:
        if self.volumes is not None:
            await self.volumes.remove_for(record, remove_volumes)


def _inspect_entry(mount: dict) -> dict:
    if mount["Type"] == "bind":
        return {
            "Type": "bind",
            "Source": mount["Source"],
            "Destination": mount["Target"],
            "Mode": "ro" if mount.get("ReadOnly") else "",
            "RW": not mount.get("ReadOnly"),
            "Propagation": (mount.get("BindOptions") or {}).get("Propagation") or "rprivate",
        }
    return {
        "Type": "tmpfs",
        "Source": "",
        "Destination": mount["Target"],
        "Mode": "",
        "RW": not mount.get("ReadOnly"),
        "Propagation": "",
    }
