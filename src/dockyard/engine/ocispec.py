"""A container's Docker Config/HostConfig turned into the OCI spec the runtime gets.

The baseline is ../shared/reference/docker-oci-config.json: what dockerd hands runc for a plain
`docker run`. Everything here is pure: the engine resolves users, mounts and namespace paths
first and passes them in a SpecContext.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field

from dockyard.engine.errors import InvalidArgument
from dockyard.runtime import seccomp
from dockyard.runtime.capabilities import CAPABILITIES, DEFAULT_CAPABILITIES, last_cap
from dockyard.runtime.spec import (
    MASKED_PATHS,
    OCI_VERSION,
    READONLY_PATHS,
    default_device_rules,
    default_mounts,
)

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"
CPU_PERIOD = 100_000

_ULIMITS = {
    "as": "RLIMIT_AS",
    "core": "RLIMIT_CORE",
    "cpu": "RLIMIT_CPU",
    "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS",
    "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE",
    "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS",
    "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME",
    "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK",
}


@dataclass
class SpecContext:
    """What the engine resolved before the spec can be written."""

    container_id: str
    config: dict  # Docker's Config, merged with the image's
    host_config: dict
    rootfs: str
    args: list[str]
    uid: int
    gid: int
    additional_gids: list[int]
    hostname_path: str | None
    hosts_path: str | None
    resolv_path: str | None
    mounts: list[dict]  # user mounts, already in OCI form (binds, volumes, tmpfs)
    namespace_paths: dict[str, str] = field(default_factory=dict)  # type -> path to join
    host_namespaces: set[str] = field(default_factory=set)  # types shared with the host
    cgroups_path: str = ""
    init_binary: str | None = None
    shm_source: str | None = None  # bind this as /dev/shm (ipc shared with another container)


def all_capabilities() -> list[str]:
    """Every capability this kernel has that the daemon itself holds, as Docker grants for
    --privileged (asking for more would make the runtime's capset fail, e.g. inside a
    container or on a host without CAP_SYS_RESOURCE)."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("CapBnd:"))
    bounding = int(line.split()[1], 16)
    top = last_cap()
    return [
        name
        for name, number in sorted(CAPABILITIES.items(), key=lambda item: item[1])
        if number <= top and bounding >> number & 1
    ]


def capabilities_for(host_config: dict) -> list[str]:
    if host_config.get("Privileged"):
        return all_capabilities()
    caps = list(DEFAULT_CAPABILITIES)
    add = [_cap_name(c) for c in host_config.get("CapAdd") or []]
    drop = [_cap_name(c) for c in host_config.get("CapDrop") or []]
    if "CAP_ALL" in drop:
        caps = []
    if "CAP_ALL" in add:
        caps = all_capabilities()
    for name in add:
        if name != "CAP_ALL" and name not in caps:
            caps.append(name)
    return [c for c in caps if c not in drop]


def _cap_name(name: str) -> str:
    upper = name.upper()
    full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if full != "CAP_ALL" and full not in CAPABILITIES:
        raise InvalidArgument(f"unknown capability: {name!r}")
    return full


def security_options(host_config: dict) -> tuple[dict | str | None, bool]:
    """(seccomp profile: None = default, "unconfined", or a profile dict; no_new_privileges)."""
    profile: dict | str | None = None
    no_new_privileges = False
    for option in host_config.get("SecurityOpt") or []:
        key, sep, value = option.partition("=")
        if not sep:
            key, sep, value = option.partition(":")
        key = key.strip()
        if key == "seccomp":
            if value == "unconfined":
                profile = "unconfined"
            else:
                try:
                    profile = json.loads(value)
                except json.JSONDecodeError as error:
                    raise InvalidArgument(f"Decoding seccomp profile failed: {error}") from None
        elif key == "no-new-privileges":
            no_new_privileges = value.lower() in ("", "true", "1")
        elif key in ("apparmor", "label", "systempaths"):
            continue  # no AppArmor or SELinux on this host: ignored, as dockerd does there
        else:
            raise InvalidArgument(f"invalid --security-opt: {option!r}")
    if profile is None and host_config.get("Privileged"):
        profile = "unconfined"
    return profile, no_new_privileges


def _rlimits(host_config: dict) -> list[dict]:
    limits = []
    for ulimit in host_config.get("Ulimits") or []:
        name = ulimit.get("Name", "")
        if name not in _ULIMITS:
            raise InvalidArgument(f"invalid ulimit type: {name}")
        limits.append({"type": _ULIMITS[name], "hard": ulimit["Hard"], "soft": ulimit["Soft"]})
    return limits


def _env(config: dict) -> list[str]:
    env = list(config.get("Env") or [])
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH_ENV)
    hostname = config.get("Hostname")
    if hostname:
        env = [e for e in env if not e.startswith("HOSTNAME=")]
        env.insert(1, f"HOSTNAME={hostname}")
    if config.get("Tty") and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    return env


def _default_mounts(ctx: SpecContext) -> list[dict]:
    host_config = ctx.host_config
    privileged = bool(host_config.get("Privileged"))
    # Docker's defaults, less /dev/shm (sized or shared below), made writable if privileged.
    mounts = [m for m in default_mounts() if m["destination"] != "/dev/shm"]
    for mount in mounts:
        if privileged and mount["destination"] in ("/sys", "/sys/fs/cgroup"):
            mount["options"] = [o if o != "ro" else "rw" for o in mount["options"]]
        if mount["destination"] == "/sys" and "network" in ctx.host_namespaces:
            # A sysfs mount shows the mounting netns's devices: bind the host's instead.
            mount.update(type="bind", source="/sys", options=["rbind", *mount["options"]])
    ipc_mode = host_config.get("IpcMode") or ""
    if ctx.shm_source:
        mounts.append(
            {
                "destination": "/dev/shm",
                "type": "bind",
                "source": ctx.shm_source,
                "options": ["rbind", "rprivate"],
            }
        )
    elif ipc_mode != "none":
        size = host_config.get("ShmSize") or DEFAULT_SHM_SIZE
        mounts.append(
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={size}"],
            }
        )
    for destination, path in (
        ("/etc/resolv.conf", ctx.resolv_path),
        ("/etc/hostname", ctx.hostname_path),
        ("/etc/hosts", ctx.hosts_path),
    ):
        if path:
            mounts.append(
                {
                    "destination": destination,
                    "type": "bind",
                    "source": path,
                    "options": ["rbind", "rprivate"],
                }
            )
    return mounts


def _tmpfs_mounts(host_config: dict) -> list[dict]:
    mounts = []
    for destination, options in (host_config.get("Tmpfs") or {}).items():
        parts = [o for o in (options or "").split(",") if o]
        base = ["noexec", "nosuid", "nodev"]
        mounts.append(
            {
                "destination": destination,
                "type": "tmpfs",
                "source": "tmpfs",
                "options": base + parts,
            }
        )
    return mounts


def _devices(host_config: dict) -> tuple[list[dict], list[dict]]:
    """(linux.devices, device cgroup rules) for --device and --privileged."""
    devices: list[dict] = []
    rules: list[dict] = []
    if host_config.get("Privileged"):
        for root, _dirs, files in os.walk("/dev"):
            if root.startswith(("/dev/pts", "/dev/shm", "/dev/mqueue")):
                continue
            for name in files:
                device = _host_device(os.path.join(root, name), os.path.join(root, name), "rwm")
                if device:
                    devices.append(device)
        rules.append({"allow": True, "access": "rwm"})
        return devices, rules
    for entry in host_config.get("Devices") or []:
        host_path = entry.get("PathOnHost", "")
        container_path = entry.get("PathInContainer") or host_path
        permissions = entry.get("CgroupPermissions") or "rwm"
        device = _host_device(host_path, container_path, permissions)
        if device is None:
            raise InvalidArgument(
                f"error gathering device information while adding custom "
                f'device "{host_path}": not a device node'
            )
        devices.append(device)
        rules.append(
            {
                "allow": True,
                "type": device["type"],
                "major": device["major"],
                "minor": device["minor"],
                "access": permissions,
            }
        )
    return devices, rules


def _host_device(host_path: str, container_path: str, permissions: str) -> dict | None:
    try:
        st = os.stat(host_path)
    except OSError:
        return None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return {
        "path": container_path,
        "type": kind,
        "major": os.major(st.st_rdev),
        "minor": os.minor(st.st_rdev),
        "fileMode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }


def _device_numbers(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as error:
        raise InvalidArgument(f"{path}: {error.strerror}") from None
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def resources(host_config: dict, device_rules: list[dict]) -> dict:
    out: dict = {"devices": default_device_rules() + device_rules}
    memory: dict = {}
    limit = host_config.get("Memory") or 0
    if limit:
        if limit < 6 * 1024 * 1024:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        memory["limit"] = limit
    swap = host_config.get("MemorySwap") or 0
    if swap > 0 or swap == -1:
        if swap > 0 and limit and swap < limit:
            raise InvalidArgument(
                "Minimum memoryswap limit should be larger than memory limit, see usage"
            )
        memory["swap"] = swap
    elif limit:
        memory["swap"] = 2 * limit  # Docker's default: as much swap as memory
    if host_config.get("MemoryReservation"):
        memory["reservation"] = host_config["MemoryReservation"]
    swappiness = host_config.get("MemorySwappiness")
    if swappiness is not None and swappiness >= 0:
        memory["swappiness"] = swappiness
    if host_config.get("OomKillDisable"):
        memory["disableOOMKiller"] = True
    if memory:
        out["memory"] = memory
    cpu: dict = {}
    nano = host_config.get("NanoCpus") or 0
    if nano:
        if host_config.get("CpuQuota") or host_config.get("CpuPeriod"):
            raise InvalidArgument(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set"
            )
        cpu["quota"] = nano * CPU_PERIOD // 1_000_000_000
        cpu["period"] = CPU_PERIOD
    for key, name in (
        ("CpuShares", "shares"),
        ("CpuQuota", "quota"),
        ("CpuPeriod", "period"),
        ("CpusetCpus", "cpus"),
        ("CpusetMems", "mems"),
        ("CpuRealtimePeriod", "realtimePeriod"),
        ("CpuRealtimeRuntime", "realtimeRuntime"),
    ):
        if host_config.get(key):
            cpu[name] = host_config[key]
    if cpu:
        out["cpu"] = cpu
    pids = host_config.get("PidsLimit")
    if pids:
        out["pids"] = {"limit": pids if pids > 0 else -1}
    block: dict = {}
    if host_config.get("BlkioWeight"):
        block["weight"] = host_config["BlkioWeight"]
    weights = []
    for entry in host_config.get("BlkioWeightDevice") or []:
        major, minor = _device_numbers(entry["Path"])
        weights.append({"major": major, "minor": minor, "weight": entry["Weight"]})
    if weights:
        block["weightDevice"] = weights
    for key, name, field_name in (
        ("BlkioDeviceReadBps", "throttleReadBpsDevice", "Rate"),
        ("BlkioDeviceWriteBps", "throttleWriteBpsDevice", "Rate"),
        ("BlkioDeviceReadIOps", "throttleReadIOPSDevice", "Rate"),
        ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice", "Rate"),
    ):
        throttles = []
        for entry in host_config.get(key) or []:
            major, minor = _device_numbers(entry["Path"])
            throttles.append({"major": major, "minor": minor, "rate": entry[field_name]})
        if throttles:
            block[name] = throttles
    if block:
        out["blockIO"] = block
    return out


def build_spec(ctx: SpecContext) -> dict:
    config, host_config = ctx.config, ctx.host_config
    caps = capabilities_for(host_config)
    profile, no_new_privileges = security_options(host_config)
    effective = caps if ctx.uid == 0 else []
    args = list(ctx.args)
    extra_mounts: list[dict] = []
    if host_config.get("Init") and ctx.init_binary:
        args = [INIT_PATH_IN_CONTAINER, "--", *args]
        extra_mounts.append(
            {
                "destination": INIT_PATH_IN_CONTAINER,
                "type": "bind",
                "source": ctx.init_binary,
                "options": ["bind", "ro"],
            }
        )
    process: dict = {
        "terminal": bool(config.get("Tty")),
        "user": {
            "uid": ctx.uid,
            "gid": ctx.gid,
            "additionalGids": sorted(set(ctx.additional_gids) | {ctx.gid}),
        },
        "args": args,
        "env": _env(config),
        "cwd": config.get("WorkingDir") or "/",
        "capabilities": {"bounding": caps, "effective": effective, "permitted": effective},
        "noNewPrivileges": no_new_privileges,
        "oomScoreAdj": host_config.get("OomScoreAdj") or 0,
    }
    if host_config.get("Ulimits"):
        process["rlimits"] = _rlimits(host_config)
    devices, device_rules = _devices(host_config)
    namespaces = []
    for kind in ("mount", "network", "uts", "pid", "ipc", "cgroup"):
        if kind in ctx.host_namespaces:
            continue
        if (
            kind == "cgroup"
            and kind not in ctx.namespace_paths
            and not _private_cgroupns(host_config)
        ):
            continue
        entry = {"type": kind}
        if kind in ctx.namespace_paths:
            entry["path"] = ctx.namespace_paths[kind]
        namespaces.append(entry)
    linux: dict = {
        "sysctl": dict(host_config.get("Sysctls") or {}),
        "resources": resources(host_config, device_rules),
        "cgroupsPath": ctx.cgroups_path,
        "namespaces": namespaces,
        "devices": devices,
    }
    if not host_config.get("Privileged"):
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    if profile != "unconfined":
        if profile is None:
            linux["seccomp"] = seccomp.default_spec(caps)
        else:
            try:
                linux["seccomp"] = seccomp.spec_from_profile(profile, caps)
            except seccomp.SeccompError as error:
                raise InvalidArgument(f"invalid seccomp profile: {error}") from None
    spec = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": ctx.rootfs, "readonly": bool(host_config.get("ReadonlyRootfs"))},
        "mounts": _default_mounts(ctx) + _tmpfs_mounts(host_config) + ctx.mounts + extra_mounts,
        "linux": linux,
    }
    if "uts" not in ctx.host_namespaces:
        spec["hostname"] = config.get("Hostname") or ctx.container_id[:12]
        if config.get("Domainname"):
            spec["domainname"] = config["Domainname"]
    return spec


def _private_cgroupns(host_config: dict) -> bool:
    mode = host_config.get("CgroupnsMode") or ""
    if mode:
        return mode == "private"
    from dockyard.runtime.cgroups import version

    return version() == 2  # Docker's default: private on cgroup v2, host on v1
