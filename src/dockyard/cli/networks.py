"""Network commands: create, ls, inspect, rm, prune, connect, disconnect."""

from __future__ import annotations

import ipaddress
from typing import Any

from dockyard.cli import tables
from dockyard.cli.commands import Cli, Exit
from dockyard.cli.common import confirm, each, filters, natural_key, need_args, short_id
from dockyard.cli.flags import LIST, VALUE, UsageError, flag, parse
from dockyard.client import APIError

NETWORK_TABLE = "{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NETWORK_HEADERS = {
    "CreatedAt": "CREATED AT",
    "ID": "NETWORK ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "Scope": "SCOPE",
    "IPv4": "IPV4",
    "IPv6": "IPV6",
    "Internal": "INTERNAL",
    "Labels": "LABELS",
}


def _pairs(items: list[str]) -> dict[str, str]:
    return {k: v for k, _, v in (item.partition("=") for item in items)}


def _ipam_configs(subnets: list[str], ranges: list[str], gateways: list[str], aux: list[str]):
    """Each --ip-range, --gateway and --aux-address goes with the --subnet holding it."""
    configs = [{"Subnet": s} for s in subnets]

    def home(address: str, what: str) -> dict:
        try:
            wanted = ipaddress.ip_network(address, strict=False)
            for config in configs:
                if wanted.subnet_of(ipaddress.ip_network(config["Subnet"], strict=False)):
                    return config
        except (ValueError, TypeError):
            raise UsageError(f"invalid {what}: {address}") from None
        raise Exit(1, f"no matching subnet for {what} {address}")

    for value in ranges:
        home(value, "range").setdefault("IPRange", value)
    for value in gateways:
        config = home(value, "gateway")
        if "Gateway" in config:
            raise Exit(1, f"cannot configure multiple gateways ({value}) for the same subnet")
        config["Gateway"] = value
    for name, address in _pairs(aux).items():
        home(address, "aux-address").setdefault("AuxiliaryAddresses", {})[name] = address
    return configs


def create(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [
            flag("-d", "--driver", kind=VALUE, default="bridge"),
            flag("--subnet", kind=LIST),
            flag("--ip-range", kind=LIST),
            flag("--gateway", kind=LIST),
            flag("--aux-address", kind=LIST),
            flag("--ipam-driver", kind=VALUE, default="default"),
            flag("--ipam-opt", kind=LIST),
            flag("-o", "--opt", kind=LIST),
            flag("--label", kind=LIST),
            flag("--internal"),
            flag("--attachable"),
            flag("--ipv6"),
        ],
        argv,
    )
    need_args(cli.command, opts.args, 1, 1)
    body = {
        "Name": opts.args[0],
        "CheckDuplicate": True,
        "Driver": opts.driver,
        "EnableIPv6": opts.ipv6,
        "IPAM": {
            "Driver": opts.ipam_driver,
            "Options": _pairs(opts.ipam_opt),
            "Config": _ipam_configs(opts.subnet, opts.ip_range, opts.gateway, opts.aux_address),
        },
        "Internal": opts.internal,
        "Attachable": opts.attachable,
        "Options": _pairs(opts.opt),
        "Labels": _pairs(opts.label),
    }
    print(cli.client.post("/networks/create", body=body)["Id"])
    return 0


def _go_time(created: str) -> str:
    """Go's time.String of an RFC 3339 UTC time: fraction without trailing zeros."""
    day, _, clock = created.rstrip("Z").partition("T")
    whole, _, fraction = clock.partition(".")
    fraction = fraction.rstrip("0")
    return f"{day} {whole}{'.' + fraction if fraction else ''} +0000 UTC"


def network_context(network: dict[str, Any], trunc: bool) -> dict[str, Any]:
    """Docker's network formatting context: every field a string, keys in the order its
    JSON output sorts them."""
    labels = network.get("Labels") or {}
    return {
        "CreatedAt": _go_time(network.get("Created", "")),
        "Driver": network.get("Driver", ""),
        "ID": short_id(network["Id"]) if trunc else network["Id"],
        "IPv4": "false",  # EnableIPv4 is newer than API 1.41: absent, so false
        "IPv6": str(bool(network.get("EnableIPv6"))).lower(),
        "Internal": str(bool(network.get("Internal"))).lower(),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Name": network.get("Name", ""),
        "Scope": network.get("Scope", ""),
        "Label": lambda key: labels.get(key, ""),
    }


def ls(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [
            flag("-q", "--quiet"),
            flag("-f", "--filter", kind=LIST),
            flag("--format", kind=VALUE, default=""),
            flag("--no-trunc"),
        ],
        argv,
    )
    need_args(cli.command, opts.args, 0, 0)
    listing = cli.client.get("/networks", params={"filters": filters(opts.filter)})
    listing.sort(key=lambda n: natural_key(n["Name"]))
    rows = [network_context(n, not opts.no_trunc) for n in listing]
    fmt = "{{.ID}}" if opts.quiet and opts.format in ("", "table") else opts.format
    cli.out(tables.render(rows, fmt, NETWORK_HEADERS, NETWORK_TABLE))
    return 0


def inspect(cli: Cli, argv: list[str]) -> int:
    from dockyard.cli.inspect import inspect_kind

    return inspect_kind(cli, [a for a in argv if a not in ("-v", "--verbose")], "network")


def rm(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-f", "--force")], argv)
    need_args(cli.command, opts.args, 1)

    def one(name: str) -> None:
        try:
            cli.client.delete(f"/networks/{cli.client.ref(name)}")
        except APIError as error:
            if opts.force and error.status == 404:
                return  # -f: a missing network is no error, and no line either
            raise
        print(name)

    if each(opts.args, one):
        raise Exit(1, "exit status 1")  # docker 28 closes a failed network rm with this line
    return 0


def prune(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-f", "--force"), flag("--filter", kind=LIST)], argv)
    need_args(cli.command, opts.args, 0, 0)
    warning = "WARNING! This will remove all custom networks not used by at least one container."
    if not opts.force and not confirm(warning):
        return 0
    result = cli.client.post("/networks/prune", params={"filters": filters(opts.filter)})
    deleted = result.get("NetworksDeleted") or []
    if deleted:
        cli.out("Deleted Networks:\n" + "".join(name + "\n" for name in deleted) + "\n")
    return 0


def connect(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [
            flag("--alias", kind=LIST),
            flag("--driver-opt", kind=LIST),
            flag("--ip", kind=VALUE, default=""),
            flag("--ip6", kind=VALUE, default=""),
            flag("--link", kind=LIST),
            flag("--link-local-ip", kind=LIST),
        ],
        argv,
    )
    need_args(cli.command, opts.args, 2, 2)
    ipam = {"IPv4Address": opts.ip, "IPv6Address": opts.ip6, "LinkLocalIPs": opts.link_local_ip}
    body = {
        "Container": opts.args[1],
        "EndpointConfig": {
            "IPAMConfig": ipam if any(ipam.values()) else None,
            "Links": opts.link or None,
            "Aliases": opts.alias or None,
            "DriverOpts": _pairs(opts.driver_opt) or None,
        },
    }
    cli.client.post(f"/networks/{cli.client.ref(opts.args[0])}/connect", body=body)
    return 0


def disconnect(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-f", "--force")], argv)
    need_args(cli.command, opts.args, 2, 2)
    body = {"Container": opts.args[1], "Force": opts.force}
    cli.client.post(f"/networks/{cli.client.ref(opts.args[0])}/disconnect", body=body)
    return 0
