"""System commands: version, info, events, df, prune."""

from __future__ import annotations

import platform
import sys
from datetime import datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

from dockyard.cli import tables
from dockyard.cli.commands import Cli
from dockyard.cli.common import apply_format, confirm, filters, need_args
from dockyard.cli.containers import time_param
from dockyard.cli.flags import LIST, VALUE, flag, parse
from dockyard.cli.images import pruned_image_lines
from dockyard.cli.units import bytes_size, human_size
from dockyard.client import APIError
from dockyard.client.api import API_VERSION, ConnectError


def client_version() -> str:
    try:
        return package_version("dockyard")
    except PackageNotFoundError:
        return "dev"


def _client_info() -> dict[str, Any]:
    return {
        "Version": client_version(),
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GoVersion": f"python{platform.python_version()}",
        "Os": sys.platform,
        "Arch": platform.machine(),
    }


def version(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-f", "--format", kind=VALUE, default="")], argv)
    need_args(cli.command, opts.args, 0, 0)
    data: dict[str, Any] = {"Client": _client_info(), "Server": None}
    error: Exception | None = None
    try:
        data["Server"] = cli.client.get("/version")
    except (APIError, ConnectError) as failure:
        error = failure
    if opts.format:
        cli.out(apply_format(opts.format, [data]))
    else:
        c = data["Client"]
        lines = [
            "Client:",
            f" Version:           {c['Version']}",
            f" API version:       {c['ApiVersion']}",
            f" Python version:    {platform.python_version()}",
            f" OS/Arch:           linux/{platform.machine()}",
        ]
        if (s := data["Server"]) is not None:
            lines += [
                "",
                f"Server: {(s.get('Platform') or {}).get('Name', '')}".rstrip(),
                " Engine:",
                f"  Version:          {s.get('Version', '')}",
                f"  API version:      {s.get('ApiVersion', '')} "
                f"(minimum version {s.get('MinAPIVersion', '')})",
                f"  Go version:       {s.get('GoVersion', '')}",
                f"  Git commit:       {s.get('GitCommit', '')}",
                f"  Built:            {s.get('BuildTime', '')}",
                f"  OS/Arch:          {s.get('Os', '')}/{s.get('Arch', '')}",
                f"  Experimental:     {str(bool(s.get('Experimental'))).lower()}",
            ]
        cli.out("\n".join(lines) + "\n")
    if error is not None:
        print(error, file=sys.stderr)
        return 1
    return 0


def info(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-f", "--format", kind=VALUE, default="")], argv)
    need_args(cli.command, opts.args, 0, 0)
    server = cli.client.get("/info")
    if opts.format:
        cli.out(apply_format(opts.format, [{**server, "ClientInfo": _client_info()}]))
        return 0
    rows = [
        ("Containers", server.get("Containers")),
        (" Running", server.get("ContainersRunning")),
        (" Paused", server.get("ContainersPaused")),
        (" Stopped", server.get("ContainersStopped")),
        ("Images", server.get("Images")),
        ("Server Version", server.get("ServerVersion")),
        ("Storage Driver", server.get("Driver")),
        ("Logging Driver", server.get("LoggingDriver")),
        ("Cgroup Driver", server.get("CgroupDriver")),
        ("Cgroup Version", server.get("CgroupVersion")),
        ("Kernel Version", server.get("KernelVersion")),
        ("Operating System", server.get("OperatingSystem")),
        ("OSType", server.get("OSType")),
        ("Architecture", server.get("Architecture")),
        ("CPUs", server.get("NCPU")),
        ("Total Memory", bytes_size(server.get("MemTotal") or 0)),
        ("Name", server.get("Name")),
        ("ID", server.get("ID")),
        ("Docker Root Dir", server.get("DockerRootDir")),
        ("Debug Mode", str(bool(server.get("Debug"))).lower()),
        ("Live Restore Enabled", str(bool(server.get("LiveRestoreEnabled"))).lower()),
    ]
    lines = [
        "Client:",
        f" Version:    {client_version()}",
        " Context:    default",
        " Debug Mode: false",
        "",
        "Server:",
    ]
    lines += [f" {name}: {'' if value is None else value}" for name, value in rows]
    cli.out("\n".join(lines) + "\n")
    for warning in server.get("Warnings") or []:
        print(warning, file=sys.stderr)
    return 0


def _event_line(event: dict[str, Any]) -> str:
    nanos = int(event.get("timeNano") or int(event.get("time", 0)) * 10**9)
    moment = datetime.fromtimestamp(nanos // 10**9).astimezone()
    offset = moment.strftime("%z")
    zone = "Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos % 10**9:09d}{zone}"
    actor = event.get("Actor") or {}
    line = f"{stamp} {event.get('Type')} {event.get('Action')} {actor.get('ID', '')}"
    attributes = actor.get("Attributes") or {}
    if attributes:
        line += " (" + ", ".join(f"{k}={attributes[k]}" for k in sorted(attributes)) + ")"
    return line + "\n"


def events(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [
            flag("--since", kind=VALUE),
            flag("--until", kind=VALUE),
            flag("-f", "--filter", kind=LIST),
            flag("--format", kind=VALUE, default=""),
        ],
        argv,
    )
    need_args(cli.command, opts.args, 0, 0)
    params = {
        "since": time_param(opts.since),
        "until": time_param(opts.until),
        "filters": filters(opts.filter),
    }
    fmt = "{{json .}}" if opts.format == "json" else opts.format
    for event in cli.client.stream("GET", "/events", params=params):
        cli.out(apply_format(fmt, [event]) if fmt else _event_line(event))
    return 0


DF_TABLE = "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
DF_HEADERS = {
    "Type": "TYPE",
    "TotalCount": "TOTAL",
    "Active": "ACTIVE",
    "Size": "SIZE",
    "Reclaimable": "RECLAIMABLE",
}


def _df_row(kind: str, total: int, active: int, size: int, reclaimable: int) -> dict[str, Any]:
    text = human_size(reclaimable)
    if size > 0:
        text += f" ({reclaimable * 100 // size}%)"
    return {
        "Type": kind,
        "TotalCount": str(total),
        "Active": str(active),
        "Size": human_size(size),
        "Reclaimable": text,
    }


def df(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-v", "--verbose"), flag("--format", kind=VALUE, default="")], argv)
    need_args(cli.command, opts.args, 0, 0)
    usage = cli.client.get("/system/df")
    images = usage.get("Images") or []
    containers = usage.get("Containers") or []
    volumes = usage.get("Volumes") or []
    cache = usage.get("BuildCache") or []
    image_size = usage.get("LayersSize") or 0
    used = sum(
        (i.get("VirtualSize") or i.get("Size") or 0) - max(i.get("SharedSize") or 0, 0)
        for i in images
        if (i.get("Containers") or 0) > 0
    )
    volume_sizes = [
        ((v.get("UsageData") or {}).get("Size", 0), (v.get("UsageData") or {}).get("RefCount", 0))
        for v in volumes
    ]
    rows = [
        _df_row(
            "Images",
            len(images),
            sum(1 for i in images if (i.get("Containers") or 0) > 0),
            image_size,
            max(image_size - used, 0),
        ),
        _df_row(
            "Containers",
            len(containers),
            sum(1 for c in containers if c.get("State") == "running"),
            sum(c.get("SizeRw") or 0 for c in containers),
            sum(c.get("SizeRw") or 0 for c in containers if c.get("State") != "running"),
        ),
        _df_row(
            "Local Volumes",
            len(volumes),
            sum(1 for _, refs in volume_sizes if refs > 0),
            sum(max(size, 0) for size, _ in volume_sizes),
            sum(max(size, 0) for size, refs in volume_sizes if refs == 0),
        ),
        _df_row(
            "Build Cache",
            len(cache),
            sum(1 for b in cache if b.get("InUse")),
            sum(b.get("Size") or 0 for b in cache),
            sum(b.get("Size") or 0 for b in cache if not b.get("InUse") and not b.get("Shared")),
        ),
    ]
    cli.out(tables.render(rows, opts.format, DF_HEADERS, DF_TABLE))
    return 0


def prune(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [
            flag("-a", "--all"),
            flag("-f", "--force"),
            flag("--volumes"),
            flag("--filter", kind=LIST),
        ],
        argv,
    )
    items = ["all stopped containers", "all networks not used by at least one container"]
    if opts.volumes:
        items.append("all anonymous volumes not used by at least one container")
    items.append(
        "all images without at least one container associated to them"
        if opts.all
        else "all dangling images"
    )
    items.append("unused build cache")
    message = "WARNING! This will remove:\n" + "".join(f"  - {i}\n" for i in items)
    if not opts.force and not confirm(message):
        return 0
    wanted = filters(opts.filter) or {}
    image_filters = {**wanted, **({} if opts.all else {"dangling": {"true": True}})}
    reclaimed = 0
    sections = [
        ("Deleted Containers", "/containers/prune", wanted, "ContainersDeleted"),
        ("Deleted Networks", "/networks/prune", wanted, "NetworksDeleted"),
    ]
    if opts.volumes:
        sections.append(("Deleted Volumes", "/volumes/prune", wanted, "VolumesDeleted"))
    sections.append(("Deleted Images", "/images/prune", image_filters, "ImagesDeleted"))
    for title, path, params, key in sections:
        try:
            result = cli.client.post(path, params={"filters": params or None}) or {}
        except APIError as error:
            if error.status == 404:
                continue  # a daemon without that area has nothing of it to prune
            raise
        deleted = result.get(key) or []
        lines = (
            pruned_image_lines(deleted)
            if deleted and isinstance(deleted[0], dict)
            else list(deleted)
        )
        if lines:
            cli.out(f"{title}:\n" + "".join(line + "\n" for line in lines) + "\n")
        reclaimed += result.get("SpaceReclaimed") or 0
    cli.out(f"Total reclaimed space: {human_size(reclaimed)}\n")
    return 0
