"""`cp` between the host and a container, through the archive routes (tar both ways)."""

from __future__ import annotations

import base64
import json
import os
import sys
import tarfile
import tempfile
from pathlib import PurePosixPath

from dockyard.cli.commands import Cli, Exit
from dockyard.cli.common import need_args
from dockyard.cli.flags import flag, parse
from dockyard.client import APIError

DIRECTORY_BIT = 1 << 31  # Go's os.ModeDir in the stat header


def split_target(arg: str) -> tuple[str | None, str]:
    """ "ctr:/path" -> ("ctr", "/path"); local paths (absolute, ./x) -> (None, path)."""
    if arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    container, _, path = arg.partition(":")
    return container, path


def _stat(cli: Cli, container: str, path: str) -> dict | None:
    try:
        connection, response = cli.client.raw(
            "HEAD", f"/containers/{cli.client.ref(container)}/archive", params={"path": path}
        )
    except APIError as error:
        if error.status == 404:
            return None
        raise
    connection.close()
    header = response.getheader("X-Docker-Container-Path-Stat")
    return json.loads(base64.b64decode(header)) if header else {}


def _safe_name(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return not name.startswith("/") and ".." not in parts


def _from_container(cli: Cli, container: str, src: str, dest: str) -> None:
    connection, response = cli.client.raw(
        "GET", f"/containers/{cli.client.ref(container)}/archive", params={"path": src}
    )
    try:
        if dest == "-":
            while chunk := response.read(1 << 20):
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return
        root = PurePosixPath(src.rstrip("/") or "/").name
        if os.path.isdir(dest):
            target_dir, rename = dest, None
        else:
            target_dir, rename = os.path.dirname(os.path.abspath(dest)), os.path.basename(dest)
            if not os.path.isdir(target_dir):
                raise Exit(1, f"Error: no such directory: {target_dir}")
        with tarfile.open(fileobj=response, mode="r|") as archive:
            for member in archive:
                if rename and (member.name == root or member.name.startswith(root + "/")):
                    member.name = rename + member.name[len(root) :]
                if not _safe_name(member.name):
                    continue
                archive.extract(member, target_dir, filter="tar")
    finally:
        connection.close()


def _to_container(cli: Cli, src: str, container: str, dest: str, follow: bool) -> None:
    ref = cli.client.ref(container)
    if src == "-":
        body = sys.stdin.buffer.read()
        cli.client.call("PUT", f"/containers/{ref}/archive", params={"path": dest}, body=body)
        return
    if not os.path.lexists(src):
        raise Exit(1, f"lstat {os.path.abspath(src)}: no such file or directory")
    info = _stat(cli, container, dest)
    if info is not None and info.get("mode", 0) & DIRECTORY_BIT:
        target, name = dest, os.path.basename(os.path.normpath(src))
    else:
        parent = str(PurePosixPath(dest).parent)
        if dest.endswith("/") and info is None:
            raise Exit(
                1,
                f"Error response from daemon: Could not find the file {dest} "
                f"in container {container}",
            )
        target, name = parent, PurePosixPath(dest).name
    with tempfile.TemporaryFile() as spool:
        with tarfile.open(fileobj=spool, mode="w", dereference=follow) as archive:
            archive.add(src, arcname=name)
        spool.seek(0)
        params = {"path": target, "noOverwriteDirNonDir": True}
        cli.client.call(
            "PUT",
            f"/containers/{ref}/archive",
            params=params,
            body=spool.read(),
            headers={"Content-Type": "application/x-tar"},
        )


def cp(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [flag("-a", "--archive"), flag("-L", "--follow-link"), flag("-q", "--quiet")], argv
    )
    need_args(cli.command, opts.args, 2, 2)
    (src_ctr, src), (dest_ctr, dest) = map(split_target, opts.args)
    if src_ctr and dest_ctr:
        raise Exit(1, "copying between containers is not supported")
    if not src_ctr and not dest_ctr:
        raise Exit(1, "must specify at least one container source")
    if src_ctr:
        _from_container(cli, src_ctr, src, dest)
    else:
        assert dest_ctr is not None
        _to_container(cli, src, dest_ctr, dest, opts.follow_link)
    return 0
