"""Container commands that are plain requests: ps, stop, rm, logs, inspect, top, port, ..."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any

from dockyard.cli import tables
from dockyard.cli.commands import Cli, Exit
from dockyard.cli.common import (
    confirm,
    each,
    ellipsis,
    filters,
    go_quote,
    natural_key,
    need_args,
    short_id,
)
from dockyard.cli.createflags import go_duration
from dockyard.cli.flags import LIST, VALUE, UsageError, flag, parse
from dockyard.cli.units import human_size, nano_cpus, parse_time, ram_in_bytes, since
from dockyard.client.streams import STDERR, output

PS_TABLE = "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
PS_HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "RunningFor": "CREATED",
    "Ports": "PORTS",
    "State": "STATE",
    "Status": "STATUS",
    "Size": "SIZE",
    "Names": "NAMES",
    "Labels": "LABELS",
    "Label": "LABEL",
    "Mounts": "MOUNTS",
    "LocalVolumes": "LOCAL VOLUMES",
    "Networks": "NETWORKS",
}


def go_time(timestamp: float) -> str:
    """time.Unix(t, 0).String() in the local zone: "2024-01-02 15:04:05 +0000 UTC"."""
    moment = datetime.fromtimestamp(int(timestamp)).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %z ") + (moment.tzname() or "")


def display_ports(ports: list[dict[str, Any]]) -> str:
    out = []
    for port in sorted(
        ports or [], key=lambda p: (p.get("PrivatePort", 0), p.get("Type", ""), p.get("IP", ""))
    ):
        private = f"{port.get('PrivatePort')}/{port.get('Type', 'tcp')}"
        if port.get("PublicPort"):
            ip = port.get("IP", "")
            ip = f"[{ip}]" if ":" in ip else ip
            out.append(f"{ip}:{port['PublicPort']}->{private}")
        else:
            out.append(private)
    return ", ".join(dict.fromkeys(out))


def image_name(image: str, image_id: str, trunc: bool) -> str:
    if not image:
        return "<no image>"
    if not trunc:
        return image
    if image.startswith("sha256:") or short_id(image) == short_id(image_id):
        return short_id(image)
    name = image.split("@", 1)[0]
    return name.removeprefix("docker.io/library/").removeprefix("docker.io/")


def container_context(c: dict[str, Any], trunc: bool) -> dict[str, Any]:
    """Docker's ContainerContext fields for one /containers/json entry."""
    names = [n.lstrip("/") for n in c.get("Names") or []]
    if trunc:
        names = [n for n in names if "/" not in n][:1] or names[:1]
    labels = c.get("Labels") or {}
    mounts = c.get("Mounts") or []
    size = human_size(c.get("SizeRw") or 0, 3)
    if c.get("SizeRootFs"):
        size = f"{size} (virtual {human_size(c['SizeRootFs'], 3)})"
    command = c.get("Command", "")
    return {
        "Command": go_quote(ellipsis(command, 20) if trunc else command),
        "CreatedAt": go_time(c.get("Created", 0)),
        "ID": short_id(c["Id"]) if trunc else c["Id"],
        "Image": image_name(c.get("Image", ""), c.get("ImageID", ""), trunc),
        "Label": lambda key: labels.get(key, ""),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "LocalVolumes": str(sum(1 for m in mounts if m.get("Driver") == "local")),
        "Mounts": ",".join(
            ellipsis(m.get("Name") or m.get("Source", ""), 15)
            if trunc
            else (m.get("Name") or m.get("Source", ""))
            for m in mounts
        ),
        "Names": ",".join(names),
        "Networks": ",".join(sorted((c.get("NetworkSettings") or {}).get("Networks") or {})),
        "Ports": display_ports(c.get("Ports") or []),
        "RunningFor": since(c.get("Created", 0)),
        "Size": size,
        "State": c.get("State", ""),
        "Status": c.get("Status", ""),
    }


PS_FLAGS = [
    flag("-a", "--all"),
    flag("-q", "--quiet"),
    flag("-n", "--last", kind=VALUE, default="-1"),
    flag("-l", "--latest"),
    flag("-s", "--size"),
    flag("--no-trunc"),
    flag("-f", "--filter", kind=LIST),
    flag("--format", kind=VALUE, default=""),
]


def ps(cli: Cli, argv: list[str]) -> int:
    opts = parse(PS_FLAGS, argv)
    need_args(cli.command, opts.args, 0, 0)
    limit = 1 if opts.latest else int(opts.last)
    fmt = opts.format
    params = {
        "all": opts.all or limit != -1 or None,
        "limit": limit if limit > 0 else None,
        "size": opts.size or ".Size" in fmt or None,
        "filters": filters(opts.filter),
    }
    listing = cli.client.get("/containers/json", params=params)
    items = [container_context(c, not opts.no_trunc) for c in listing]
    if opts.quiet and fmt in ("", "table"):
        fmt = "{{.ID}}"
    table = PS_TABLE + ("\t{{.Size}}" if opts.size else "")
    cli.out(tables.render(items, fmt, PS_HEADERS, table))
    return 0


def _simple(cli: Cli, argv: list[str], action: str, flags: list, params: Any) -> int:
    opts = parse(flags, argv)
    need_args(cli.command, opts.args, 1)

    def one(name: str) -> None:
        cli.client.post(f"/containers/{cli.client.ref(name)}/{action}", params=params(opts))
        print(name)

    return each(opts.args, one)


def stop(cli: Cli, argv: list[str]) -> int:
    flags = [flag("-t", "--time", "--timeout", kind=VALUE), flag("-s", "--signal", kind=VALUE)]
    return _simple(cli, argv, "stop", flags, lambda o: {"t": o.time, "signal": o.signal})


def restart(cli: Cli, argv: list[str]) -> int:
    flags = [flag("-t", "--time", "--timeout", kind=VALUE), flag("-s", "--signal", kind=VALUE)]
    return _simple(cli, argv, "restart", flags, lambda o: {"t": o.time, "signal": o.signal})


def kill(cli: Cli, argv: list[str]) -> int:
    flags = [flag("-s", "--signal", kind=VALUE)]
    return _simple(cli, argv, "kill", flags, lambda o: {"signal": o.signal})


def pause(cli: Cli, argv: list[str]) -> int:
    return _simple(cli, argv, "pause", [], lambda o: None)


def unpause(cli: Cli, argv: list[str]) -> int:
    return _simple(cli, argv, "unpause", [], lambda o: None)


def rm(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-f", "--force"), flag("-v", "--volumes"), flag("-l", "--link")], argv)
    need_args(cli.command, opts.args, 1)

    def one(name: str) -> None:
        params = {"force": opts.force or None, "v": opts.volumes or None, "link": opts.link or None}
        cli.client.delete(f"/containers/{cli.client.ref(name)}", params=params)
        print(name)

    return each(opts.args, one)


def rename(cli: Cli, argv: list[str]) -> int:
    opts = parse([], argv)
    need_args(cli.command, opts.args, 2, 2)
    old, new = opts.args
    cli.client.post(f"/containers/{cli.client.ref(old)}/rename", params={"name": new})
    return 0


def wait(cli: Cli, argv: list[str]) -> int:
    opts = parse([], argv)
    need_args(cli.command, opts.args, 1)

    def one(name: str) -> None:
        result = cli.client.post(f"/containers/{cli.client.ref(name)}/wait")
        print(result["StatusCode"])

    return each(opts.args, one)


def port(cli: Cli, argv: list[str]) -> int:
    opts = parse([], argv)
    need_args(cli.command, opts.args, 1, 2)
    info = cli.client.get(f"/containers/{cli.client.ref(opts.args[0])}/json")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    wanted = None
    if len(opts.args) == 2:
        number, _, proto = opts.args[1].partition("/")
        wanted = f"{number}/{proto or 'tcp'}"
    lines = []
    for key in sorted(ports):
        for binding in ports[key] or []:
            host_ip = binding.get("HostIp") or "0.0.0.0"
            address = f"[{host_ip}]" if ":" in host_ip else host_ip
            if wanted is None:
                lines.append(f"{key} -> {address}:{binding.get('HostPort')}")
            elif key == wanted:
                lines.append(f"{address}:{binding.get('HostPort')}")
    if wanted is not None and not lines:
        raise Exit(1, f"Error: No public port '{opts.args[1]}' published for {opts.args[0]}")
    cli.out("".join(line + "\n" for line in sorted(lines, key=natural_key)))
    return 0


def top(cli: Cli, argv: list[str]) -> int:
    opts = parse([], argv, interspersed=False)
    need_args(cli.command, opts.args, 1)
    params = {"ps_args": " ".join(opts.args[1:])} if len(opts.args) > 1 else None
    result = cli.client.get(f"/containers/{cli.client.ref(opts.args[0])}/top", params=params)
    rows = [result["Titles"], *(result.get("Processes") or [])]
    text = "".join("\t".join(row) + "\n" for row in rows)
    cli.out(tables.tabwrite(text, min_width=20))
    return 0


def diff(cli: Cli, argv: list[str]) -> int:
    opts = parse([], argv)
    need_args(cli.command, opts.args, 1, 1)
    changes = cli.client.get(f"/containers/{cli.client.ref(opts.args[0])}/changes") or []
    kinds = {0: "C", 1: "A", 2: "D"}
    cli.out("".join(f"{kinds.get(c['Kind'], '?')} {c['Path']}\n" for c in changes))
    return 0


def copy_response(response: Any, path: str | None) -> None:
    """An archive body to a file, or to stdout unless that is a terminal (as Docker refuses)."""
    if path is None and sys.stdout.isatty():
        raise Exit(1, "cowardly refusing to save to a terminal. Use the -o flag or redirect")
    target = open(path, "wb") if path else sys.stdout.buffer  # noqa: SIM115
    try:
        while chunk := response.read(1 << 20):
            target.write(chunk)
    finally:
        if path:
            target.close()
        else:
            target.flush()


def export(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-o", "--output", kind=VALUE)], argv)
    need_args(cli.command, opts.args, 1, 1)
    connection, response = cli.client.raw(
        "GET", f"/containers/{cli.client.ref(opts.args[0])}/export"
    )
    try:
        copy_response(response, opts.output)
    finally:
        connection.close()
    return 0


def commit(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [
            flag("-a", "--author", kind=VALUE),
            flag("-c", "--change", kind=LIST),
            flag("-m", "--message", kind=VALUE),
            flag("-p", "--pause", default=True),
        ],
        argv,
    )
    need_args(cli.command, opts.args, 1, 2)
    repo, tag = None, None
    if len(opts.args) == 2:
        reference = opts.args[1]
        name, _, maybe_tag = reference.rpartition(":")
        repo, tag = (name, maybe_tag) if name and "/" not in maybe_tag else (reference, None)
    params: dict[str, Any] = {
        "container": opts.args[0],
        "repo": repo,
        "tag": tag,
        "comment": opts.message,
        "author": opts.author,
        "pause": opts.pause,
    }
    result = cli.client.post("/commit", params={**params, "changes": tuple(opts.change)})
    print(result["Id"])
    return 0


UPDATE_FLAGS = [
    flag("-m", "--memory", kind=VALUE),
    flag("--memory-swap", kind=VALUE),
    flag("--memory-reservation", kind=VALUE),
    flag("--cpus", kind=VALUE),
    flag("-c", "--cpu-shares", kind=VALUE),
    flag("--cpuset-cpus", kind=VALUE),
    flag("--cpuset-mems", kind=VALUE),
    flag("--cpu-period", kind=VALUE),
    flag("--cpu-quota", kind=VALUE),
    flag("--blkio-weight", kind=VALUE),
    flag("--pids-limit", kind=VALUE),
    flag("--restart", kind=VALUE),
]


def update(cli: Cli, argv: list[str]) -> int:
    opts = parse(UPDATE_FLAGS, argv)
    need_args(cli.command, opts.args, 1)
    body: dict[str, Any] = {}
    converters = {
        "memory": ("Memory", ram_in_bytes),
        "memory_swap": ("MemorySwap", lambda v: -1 if v == "-1" else ram_in_bytes(v)),
        "memory_reservation": ("MemoryReservation", ram_in_bytes),
        "cpus": ("NanoCpus", nano_cpus),
        "cpu_shares": ("CpuShares", int),
        "cpuset_cpus": ("CpusetCpus", str),
        "cpuset_mems": ("CpusetMems", str),
        "cpu_period": ("CpuPeriod", int),
        "cpu_quota": ("CpuQuota", int),
        "blkio_weight": ("BlkioWeight", int),
        "pids_limit": ("PidsLimit", int),
    }
    for dest, (key, convert) in converters.items():
        if dest in opts.given:
            try:
                body[key] = convert(opts.values[dest])
            except ValueError as error:
                raise UsageError(
                    f"invalid argument for --{dest.replace('_', '-')}: {error}"
                ) from None
    if "restart" in opts.given:
        name, _, count = opts.restart.partition(":")
        body["RestartPolicy"] = {"Name": name, "MaximumRetryCount": int(count or 0)}

    def one(name: str) -> None:
        result = cli.client.post(f"/containers/{cli.client.ref(name)}/update", body=body) or {}
        for warning in result.get("Warnings") or []:
            print(warning, file=sys.stderr)
        print(name)

    return each(opts.args, one)


def time_param(value: str | None) -> str | None:
    """--since/--until: a duration back from now ("10m"), a timestamp, or RFC 3339."""
    if value is None:
        return None
    try:
        float(value)
        return value
    except ValueError:
        pass
    try:
        return str(int(time.time() - go_duration(value) / 1e9))
    except UsageError:
        pass
    stamp = parse_time(value if "T" in value else value + "T00:00:00Z")
    if not stamp:
        raise UsageError(
            f'invalid value for "since": failed to parse value as time or duration: "{value}"'
        )
    return f"{stamp:.9f}"


def logs(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [
            flag("-f", "--follow"),
            flag("-n", "--tail", kind=VALUE, default="all"),
            flag("--since", kind=VALUE),
            flag("--until", kind=VALUE),
            flag("-t", "--timestamps"),
            flag("--details"),
        ],
        argv,
    )
    need_args(cli.command, opts.args, 1, 1)
    ref = cli.client.ref(opts.args[0])
    info = cli.client.get(f"/containers/{ref}/json")
    params = {
        "stdout": True,
        "stderr": True,
        "follow": opts.follow or None,
        "tail": opts.tail,
        "since": time_param(opts.since),
        "until": time_param(opts.until),
        "timestamps": opts.timestamps or None,
        "details": opts.details or None,
    }
    connection, response = cli.client.raw("GET", f"/containers/{ref}/logs", params=params)
    try:
        for kind, payload in output(response, bool(info["Config"].get("Tty"))):
            target = sys.stderr.buffer if kind == STDERR else sys.stdout.buffer
            target.write(payload)
            target.flush()
    finally:
        connection.close()
    return 0


def inspect_containers(cli: Cli, argv: list[str]) -> int:
    from dockyard.cli.inspect import inspect_kind

    return inspect_kind(cli, argv, "container")


def stats(cli: Cli, argv: list[str]) -> int:
    from dockyard.cli.stats import stats as run_stats

    return run_stats(cli, argv)


def cp(cli: Cli, argv: list[str]) -> int:
    from dockyard.cli.copy import cp as run_cp

    return run_cp(cli, argv)


def prune(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-f", "--force"), flag("--filter", kind=LIST)], argv)
    if not opts.force and not confirm("WARNING! This will remove all stopped containers."):
        return 0
    result = cli.client.post("/containers/prune", params={"filters": filters(opts.filter)})
    deleted = result.get("ContainersDeleted") or []
    text = "Deleted Containers:\n" + "".join(d + "\n" for d in deleted) + "\n" if deleted else ""
    cli.out(text + f"Total reclaimed space: {human_size(result.get('SpaceReclaimed') or 0)}\n")
    return 0
