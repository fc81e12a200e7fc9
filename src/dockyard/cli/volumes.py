"""Volume commands: create, ls, inspect, rm, prune."""

from __future__ import annotations

from typing import Any

from dockyard.cli import tables
from dockyard.cli.commands import Cli
from dockyard.cli.common import confirm, each, filters, need_args
from dockyard.cli.flags import LIST, VALUE, flag, parse
from dockyard.cli.units import human_size

VOLUME_TABLE = "{{.Driver}}\t{{.Name}}"
VOLUME_HEADERS = {
    "Driver": "DRIVER",
    "Name": "VOLUME NAME",
    "Scope": "SCOPE",
    "Mountpoint": "MOUNTPOINT",
    "Labels": "LABELS",
    "Links": "LINKS",
    "Size": "SIZE",
    "Availability": "AVAILABILITY",
    "Group": "GROUP",
}


def _pairs(items: list[str]) -> dict[str, str]:
    return {k: v for k, _, v in (item.partition("=") for item in items)}


def create(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [
            flag("-d", "--driver", kind=VALUE, default="local"),
            flag("--label", kind=LIST),
            flag("-o", "--opt", kind=LIST),
            flag("--name", kind=VALUE, default=""),
        ],
        argv,
    )
    need_args(cli.command, opts.args, 0, 1)
    body = {
        "Driver": opts.driver,
        "DriverOpts": _pairs(opts.opt),
        "Labels": _pairs(opts.label),
        "Name": opts.args[0] if opts.args else opts.name,
    }
    print(cli.client.post("/volumes/create", body=body)["Name"])
    return 0


def volume_context(volume: dict[str, Any]) -> dict[str, Any]:
    labels = volume.get("Labels") or {}
    usage = volume.get("UsageData") or {}
    return {
        "Availability": "N/A",
        "Driver": volume.get("Driver", ""),
        "Group": "N/A",
        "Label": lambda key: labels.get(key, ""),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Links": str(usage["RefCount"]) if usage.get("RefCount", -1) >= 0 else "N/A",
        "Mountpoint": volume.get("Mountpoint", ""),
        "Name": volume.get("Name", ""),
        "Scope": volume.get("Scope", ""),
        "Size": human_size(usage["Size"], 3) if usage.get("Size", -1) >= 0 else "N/A",
    }


def ls(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [
            flag("-q", "--quiet"),
            flag("-f", "--filter", kind=LIST),
            flag("--format", kind=VALUE, default=""),
        ],
        argv,
    )
    need_args(cli.command, opts.args, 0, 0)
    result = cli.client.get("/volumes", params={"filters": filters(opts.filter)})
    volumes = sorted(result.get("Volumes") or [], key=lambda v: v["Name"])
    fmt = "{{.Name}}" if opts.quiet and opts.format in ("", "table") else opts.format
    cli.out(tables.render([volume_context(v) for v in volumes], fmt, VOLUME_HEADERS, VOLUME_TABLE))
    return 0


def inspect(cli: Cli, argv: list[str]) -> int:
    from dockyard.cli.inspect import inspect_kind

    return inspect_kind(cli, argv, "volume")


def rm(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-f", "--force")], argv)
    need_args(cli.command, opts.args, 1)

    def one(name: str) -> None:
        cli.client.delete(f"/volumes/{cli.client.ref(name)}", params={"force": opts.force or None})
        print(name)

    return each(opts.args, one)


def prune(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-a", "--all"), flag("-f", "--force"), flag("--filter", kind=LIST)], argv)
    wanted = filters(opts.filter) or {}
    if opts.all:
        wanted.setdefault("all", {})["true"] = True
    warning = (
        "WARNING! This will remove all local volumes not used by at least one container."
        if opts.all
        else "WARNING! This will remove anonymous local volumes not used by at least one container."
    )
    if not opts.force and not confirm(warning):
        return 0
    result = cli.client.post("/volumes/prune", params={"filters": wanted or None})
    deleted = result.get("VolumesDeleted") or []
    text = "Deleted Volumes:\n" + "".join(d + "\n" for d in deleted) + "\n" if deleted else ""
    cli.out(text + f"Total reclaimed space: {human_size(result.get('SpaceReclaimed') or 0)}\n")
    return 0
