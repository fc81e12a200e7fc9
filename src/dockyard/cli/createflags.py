"""`run`/`create` flags (Docker's names and shorthands) -> the create request body."""

from __future__ import annotations

import os
import re
import shlex
from typing import Any

from dockyard.cli.flags import LIST, VALUE, Flag, Parsed, UsageError, flag
from dockyard.cli.units import nano_cpus, ram_in_bytes

CREATE_FLAGS: list[Flag] = [
    flag("--name", kind=VALUE),
    flag("-e", "--env", kind=LIST),
    flag("--env-file", kind=LIST),
    flag("-l", "--label", kind=LIST),
    flag("--label-file", kind=LIST),
    flag("-w", "--workdir", kind=VALUE),
    flag("-u", "--user", kind=VALUE),
    flag("-v", "--volume", kind=LIST),
    flag("--mount", kind=LIST),
    flag("--volumes-from", kind=LIST),
    flag("--tmpfs", kind=LIST),
    flag("-p", "--publish", kind=LIST),
    flag("-P", "--publish-all"),
    flag("--expose", kind=LIST),
    flag("--restart", kind=VALUE, default="no"),
    flag("--rm"),
    flag("--entrypoint", kind=VALUE),
    flag("--init"),
    flag("--privileged"),
    flag("--cap-add", kind=LIST),
    flag("--cap-drop", kind=LIST),
    flag("--security-opt", kind=LIST),
    flag("--read-only"),
    flag("-m", "--memory", kind=VALUE),
    flag("--memory-swap", kind=VALUE),
    flag("--memory-reservation", kind=VALUE),
    flag("--memory-swappiness", kind=VALUE, default="-1"),
    flag("--oom-kill-disable"),
    flag("--cpus", kind=VALUE),
    flag("-c", "--cpu-shares", kind=VALUE),
    flag("--cpuset-cpus", kind=VALUE, default=""),
    flag("--cpuset-mems", kind=VALUE, default=""),
    flag("--cpu-period", kind=VALUE),
    flag("--cpu-quota", kind=VALUE),
    flag("--blkio-weight", kind=VALUE),
    flag("--pids-limit", kind=VALUE),
    flag("--ulimit", kind=LIST),
    flag("--device", kind=LIST),
    flag("--sysctl", kind=LIST),
    flag("--add-host", kind=LIST),
    flag("--dns", kind=LIST),
    flag("--dns-search", kind=LIST),
    flag("--dns-option", kind=LIST),
    flag("-h", "--hostname", kind=VALUE, default=""),
    flag("--domainname", kind=VALUE, default=""),
    flag("--mac-address", kind=VALUE),
    flag("--ip", kind=VALUE),
    flag("--network", "--net", kind=VALUE, default="default"),
    flag("--network-alias", kind=LIST),
    flag("--link", kind=LIST),
    flag("--log-driver", kind=VALUE, default=""),
    flag("--log-opt", kind=LIST),
    flag("--health-cmd", kind=VALUE),
    flag("--health-interval", kind=VALUE),
    flag("--health-timeout", kind=VALUE),
    flag("--health-retries", kind=VALUE),
    flag("--health-start-period", kind=VALUE),
    flag("--no-healthcheck"),
    flag("--stop-signal", kind=VALUE),
    flag("--stop-timeout", kind=VALUE),
    flag("--group-add", kind=LIST),
    flag("--oom-score-adj", kind=VALUE, default="0"),
    flag("--shm-size", kind=VALUE),
    flag("--pid", kind=VALUE, default=""),
    flag("--ipc", kind=VALUE, default=""),
    flag("--uts", kind=VALUE, default=""),
    flag("--userns", kind=VALUE, default=""),
    flag("--cgroupns", kind=VALUE, default=""),
    flag("--cgroup-parent", kind=VALUE, default=""),
    flag("--runtime", kind=VALUE, default=""),
    flag("--platform", kind=VALUE),
    flag("--pull", kind=VALUE, default="missing"),
    flag("--cidfile", kind=VALUE),
    flag("-i", "--interactive"),
    flag("-t", "--tty"),
    flag("-a", "--attach", kind=LIST),
    flag("--detach-keys", kind=VALUE),
    flag("-q", "--quiet"),
]
RUN_FLAGS: list[Flag] = [*CREATE_FLAGS, flag("-d", "--detach"), flag("--sig-proxy", default=True)]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}


def go_duration(value: str) -> int:
    """A Go time.Duration ("30s", "1m30s", "500ms") in nanoseconds."""
    if value == "0":
        return 0
    pos, total = 0, 0.0
    for match in _DURATION.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_NS[match.group(2)]
        pos = match.end()
    if pos != len(value) or not value:
        raise UsageError(f'time: invalid duration "{value}"')
    return int(total)


def key_values(items: list[str], files: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    """-e/-l values plus --env-file/--label-file lines; bare `K` takes K from the environment."""
    out: list[str] = []
    for path in files:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    out.append(line)
    out.extend(items)
    resolved = []
    for item in out:
        if "=" not in item:
            if item in os.environ:
                resolved.append(f"{item}={os.environ[item]}")
            continue
        resolved.append(item)
    return resolved


def _labels(items: list[str]) -> dict[str, str]:
    labels = {}
    for item in items:
        key, _, value = item.partition("=")
        labels[key] = value
    return labels


def _port_spec(spec: str) -> tuple[str, str, str]:
    """`[ip:][host:]container[/proto]` -> (container "80/tcp", host ip, host port)."""
    port, _, proto = spec.partition("/")
    proto = proto or "tcp"
    parts = port.rsplit(":", 2)
    if len(parts) == 1:
        return f"{parts[0]}/{proto}", "", ""
    if len(parts) == 2:
        return f"{parts[1]}/{proto}", "", parts[0]
    return f"{parts[2]}/{proto}", parts[0].strip("[]"), parts[1]


def _ports(publish: list[str], expose: list[str]) -> tuple[dict, dict]:
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for spec in publish:
        container, host_ip, host_port = _port_spec(spec)
        if not container.split("/")[0].replace("-", "").isdigit():
            raise UsageError(f"invalid containerPort: {container.split('/')[0]}")
        exposed[container] = {}
        bindings.setdefault(container, []).append({"HostIp": host_ip, "HostPort": host_port})
    for spec in expose:
        port, _, proto = spec.partition("/")
        exposed[f"{port}/{proto or 'tcp'}"] = {}
    return exposed, bindings


def _mount(spec: str) -> dict[str, Any]:
    """--mount type=bind,source=/a,target=/b,readonly,bind-propagation=rshared,..."""
    mount: dict[str, Any] = {"Type": "volume"}
    for field in spec.split(","):
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if key == "type":
            mount["Type"] = value
        elif key in ("source", "src"):
            mount["Source"] = value
        elif key in ("target", "destination", "dst"):
            mount["Target"] = value
        elif key in ("readonly", "ro"):
            mount["ReadOnly"] = not eq or value.lower() in ("1", "true")
        elif key == "bind-propagation":
            mount.setdefault("BindOptions", {})["Propagation"] = value
        elif key == "volume-nocopy":
            mount.setdefault("VolumeOptions", {})["NoCopy"] = not eq or value == "true"
        elif key == "volume-label":
            label, _, label_value = value.partition("=")
            options = mount.setdefault("VolumeOptions", {})
            options.setdefault("Labels", {})[label] = label_value
        elif key == "tmpfs-size":
            mount.setdefault("TmpfsOptions", {})["SizeBytes"] = ram_in_bytes(value)
        elif key == "tmpfs-mode":
            mount.setdefault("TmpfsOptions", {})["Mode"] = int(value, 8)
        else:
            raise UsageError(
                f'invalid argument "{spec}" for "--mount" flag: '
                f"unexpected key '{key}' in '{field}'"
            )
    if "Target" not in mount:
        raise UsageError(f'invalid argument "{spec}" for "--mount" flag: target is required')
    return mount


def _volumes(specs: list[str]) -> tuple[list[str], dict[str, dict]]:
    binds, anonymous = [], {}
    for spec in specs:
        parts = spec.split(":")
        if len(parts) == 1:
            anonymous[parts[0]] = {}
        elif len(parts) in (2, 3) and parts[0] and parts[1]:
            binds.append(spec)
        else:
            raise UsageError(f"invalid spec: {spec}: too many colons")
    return binds, anonymous


def _restart(value: str) -> dict[str, Any]:
    name, _, count = value.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure", ""):
        raise UsageError(f"invalid restart policy: {value}")
    if count and name != "on-failure":
        raise UsageError(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        )
    return {"Name": name if name != "no" else "no", "MaximumRetryCount": int(count or 0)}


def _ulimit(spec: str) -> dict[str, Any]:
    name, _, limits = spec.partition("=")
    soft, _, hard = limits.partition(":")
    try:
        return {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}
    except ValueError:
        raise UsageError(f'invalid argument "{spec}" for "--ulimit" flag') from None


def _device(spec: str) -> dict[str, str]:
    parts = spec.split(":")
    host = parts[0]
    inside = parts[1] if len(parts) > 1 and parts[1].startswith("/") else host
    permissions = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
    return {"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": permissions}


def _tmpfs(specs: list[str]) -> dict[str, str]:
    out = {}
    for spec in specs:
        path, _, options = spec.partition(":")
        out[path] = options
    return out


def _healthcheck(opts: Parsed) -> dict[str, Any] | None:
    if opts.no_healthcheck:
        return {"Test": ["NONE"]}
    check: dict[str, Any] = {}
    if opts.health_cmd is not None:
        check["Test"] = ["CMD-SHELL", opts.health_cmd]
    for dest, key in (
        ("health_interval", "Interval"),
        ("health_timeout", "Timeout"),
        ("health_start_period", "StartPeriod"),
    ):
        if getattr(opts, dest) is not None:
            check[key] = go_duration(getattr(opts, dest))
    if opts.health_retries is not None:
        check["Retries"] = int(opts.health_retries)
    return check or None


def _int(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(
            f'invalid argument "{value}" for "{name}" flag: strconv.ParseInt: parsing '
            f'"{value}": invalid syntax'
        ) from None


def _memory(value: str | None, name: str) -> int:
    if value is None:
        return 0
    if value == "-1":
        return -1
    try:
        return ram_in_bytes(value)
    except ValueError as error:
        raise UsageError(f'invalid argument "{value}" for "{name}" flag: {error}') from None


def create_body(opts: Parsed, image: str, command: list[str]) -> dict[str, Any]:
    """The create request as the docker CLI builds it from the same flags."""
    attach = [a.lower() for a in opts.attach]
    detach = bool(opts.values.get("detach"))
    stdin = "stdin" in attach or (opts.interactive and not detach)
    if detach or not attach:
        stdout = stderr = not detach
    else:
        stdout, stderr = "stdout" in attach, "stderr" in attach
    exposed, bindings = _ports(opts.publish, opts.expose)
    binds, anonymous = _volumes(opts.volume)
    entrypoint = None
    if "entrypoint" in opts.given:
        entrypoint = shlex.split(opts.entrypoint) if opts.entrypoint else [""]
    stop_timeout = _int(opts.stop_timeout, "--stop-timeout")
    config: dict[str, Any] = {
        "Hostname": opts.hostname,
        "Domainname": opts.domainname,
        "User": opts.user or "",
        "AttachStdin": stdin,
        "AttachStdout": stdout,
        "AttachStderr": stderr,
        "ExposedPorts": exposed or None,
        "Tty": opts.tty,
        "OpenStdin": opts.interactive,
        "StdinOnce": stdin,
        "Env": key_values(opts.env, opts.env_file),
        "Cmd": command or None,
        "Image": image,
        "Volumes": anonymous or None,
        "WorkingDir": opts.workdir or "",
        "Entrypoint": entrypoint,
        "OnBuild": None,
        "Labels": _labels(key_values(opts.label, opts.label_file)),
    }
    if (check := _healthcheck(opts)) is not None:
        config["Healthcheck"] = check
    if opts.stop_signal:
        config["StopSignal"] = opts.stop_signal
    if stop_timeout is not None:
        config["StopTimeout"] = stop_timeout
    if opts.mac_address:
        config["MacAddress"] = opts.mac_address
    host_config: dict[str, Any] = {
        "Binds": binds or None,
        "ContainerIDFile": opts.cidfile or "",
        "LogConfig": {"Type": opts.log_driver, "Config": _labels(opts.log_opt)},
        "NetworkMode": opts.network,
        "PortBindings": bindings,
        "RestartPolicy": _restart(opts.restart),
        "AutoRemove": opts.rm,
        "VolumeDriver": "",
        "VolumesFrom": opts.volumes_from or None,
        "CapAdd": opts.cap_add or None,
        "CapDrop": opts.cap_drop or None,
        "CgroupnsMode": opts.cgroupns,
        "Dns": opts.dns,
        "DnsOptions": opts.dns_option,
        "DnsSearch": opts.dns_search,
        "ExtraHosts": opts.add_host or None,
        "GroupAdd": opts.group_add or None,
        "IpcMode": opts.ipc,
        "Cgroup": "",
        "Links": opts.link or None,
        "OomScoreAdj": _int(opts.oom_score_adj, "--oom-score-adj"),
        "PidMode": opts.pid,
        "Privileged": opts.privileged,
        "PublishAllPorts": opts.publish_all,
        "ReadonlyRootfs": opts.read_only,
        "SecurityOpt": opts.security_opt or None,
        "Tmpfs": _tmpfs(opts.tmpfs) or None,
        "UTSMode": opts.uts,
        "UsernsMode": opts.userns,
        "ShmSize": _memory(opts.shm_size, "--shm-size"),
        "Sysctls": _labels(opts.sysctl) or None,
        "Runtime": opts.runtime,
        "ConsoleSize": [0, 0],
        "Isolation": "",
        "CpuShares": _int(opts.cpu_shares, "--cpu-shares") or 0,
        "Memory": _memory(opts.memory, "--memory"),
        "NanoCpus": nano_cpus(opts.cpus) if opts.cpus else 0,
        "CgroupParent": opts.cgroup_parent,
        "BlkioWeight": _int(opts.blkio_weight, "--blkio-weight") or 0,
        "CpuPeriod": _int(opts.cpu_period, "--cpu-period") or 0,
        "CpuQuota": _int(opts.cpu_quota, "--cpu-quota") or 0,
        "CpusetCpus": opts.cpuset_cpus,
        "CpusetMems": opts.cpuset_mems,
        "Devices": [_device(d) for d in opts.device],
        "MemoryReservation": _memory(opts.memory_reservation, "--memory-reservation"),
        "MemorySwap": _memory(opts.memory_swap, "--memory-swap"),
        "MemorySwappiness": _int(opts.memory_swappiness, "--memory-swappiness"),
        "OomKillDisable": opts.oom_kill_disable,
        "PidsLimit": _int(opts.pids_limit, "--pids-limit"),
        "Ulimits": [_ulimit(u) for u in opts.ulimit] or None,
        "Mounts": [_mount(m) for m in opts.mount] or None,
        "Init": True if opts.init else None,
    }
    endpoint: dict[str, Any] = {}
    if opts.network_alias:
        endpoint["Aliases"] = opts.network_alias
    if opts.ip:
        endpoint["IPAMConfig"] = {"IPv4Address": opts.ip}
    return {
        **config,
        "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": {opts.network: endpoint}},
    }
