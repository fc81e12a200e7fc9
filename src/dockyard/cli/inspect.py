"""`inspect` for containers, images, volumes and networks: indented JSON or a template
per object."""

from __future__ import annotations

import sys
from typing import Any

from dockyard.cli.commands import Cli, Exit
from dockyard.cli.common import apply_format, indented_json, need_args
from dockyard.cli.flags import VALUE, UsageError, flag, parse
from dockyard.client import APIError

INSPECT_FLAGS = [
    flag("-f", "--format", kind=VALUE, default=""),
    flag("-s", "--size"),
    flag("--type", kind=VALUE, default=""),
]
KINDS = ("container", "image", "volume", "network")


def _fetch(cli: Cli, kind: str, name: str, size: bool) -> Any:
    ref = cli.client.ref(name)
    if kind == "container":
        return cli.client.get(f"/containers/{ref}/json", params={"size": size or None})
    if kind == "image":
        return cli.client.get(f"/images/{ref}/json")
    if kind == "volume":
        return cli.client.get(f"/volumes/{ref}")
    return cli.client.get(f"/networks/{ref}")


def _write(fmt: str, found: list[Any]) -> None:
    sys.stdout.write(apply_format(fmt, found) if fmt else indented_json(found))
    sys.stdout.flush()


def _run(cli: Cli, argv: list[str], kinds: tuple[str, ...]) -> int:
    opts = parse(INSPECT_FLAGS, argv)
    need_args(cli.command, opts.args, 1)
    if opts.type:
        if opts.type not in KINDS:
            raise UsageError(f'"{opts.type}" is not a valid value for --type')
        kinds = (opts.type,)
    found, errors = [], []
    for name in opts.args:
        last: APIError | None = None
        for kind in kinds:
            try:
                found.append(_fetch(cli, kind, name, opts.size))
                break
            except APIError as error:
                if error.status != 404:
                    raise
                last = error
        else:
            # one kind: the daemon's own words; several: Docker's generic message
            errors.append(str(last) if len(kinds) == 1 else f"Error: No such object: {name}")
    _write(opts.format, found)
    if errors:
        raise Exit(1, "\n".join(errors))
    return 0


def inspect(cli: Cli, argv: list[str]) -> int:
    return _run(cli, argv, KINDS)


def inspect_kind(cli: Cli, argv: list[str], kind: str) -> int:
    return _run(cli, [*argv, "--type", kind], (kind,))
