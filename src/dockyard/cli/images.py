"""Image commands: images, history, rmi, tag, pull, save, load, import, prune, bootstrap."""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from dockyard.cli import progress, tables
from dockyard.cli.commands import Cli, Exit
from dockyard.cli.common import confirm, each, ellipsis, filters, need_args, short_id
from dockyard.cli.containers import copy_response, go_time
from dockyard.cli.flags import LIST, VALUE, flag, parse
from dockyard.cli.units import human_size, since
from dockyard.client import APIError

IMAGES_TABLE = "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_DIGESTS_TABLE = (
    "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
)
IMAGE_HEADERS = {
    "Containers": "CONTAINERS",
    "CreatedAt": "CREATED AT",
    "CreatedSince": "CREATED",
    "Digest": "DIGEST",
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "SharedSize": "SHARED SIZE",
    "Size": "SIZE",
    "Tag": "TAG",
    "UniqueSize": "UNIQUE SIZE",
    "VirtualSize": "VIRTUAL SIZE",
}


def split_reference(reference: str) -> tuple[str, str]:
    """ "repo:tag" -> (repo, tag), minding registry ports ("host:5000/x")."""
    name, _, tag = reference.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return reference, ""


def familiar(name: str) -> str:
    return name.removeprefix("docker.io/library/").removeprefix("docker.io/")


def image_rows(image: dict[str, Any], trunc: bool) -> list[dict[str, Any]]:
    """One row per repository:tag, as Docker's image table shows an image."""
    digests: dict[str, str] = {}
    for item in image.get("RepoDigests") or []:
        repo, _, digest = item.partition("@")
        digests.setdefault(familiar(repo), digest)
    pairs = []
    for item in image.get("RepoTags") or []:
        if item == "<none>:<none>":
            continue
        repo, tag = split_reference(item)
        pairs.append((familiar(repo), tag))
    tagged_repos = {repo for repo, _ in pairs}
    pairs += [(repo, "<none>") for repo in digests if repo not in tagged_repos]
    pairs = pairs or [("<none>", "<none>")]
    base = {
        "Containers": _count(image.get("Containers")),
        "CreatedAt": go_time(image.get("Created", 0)),
        "CreatedSince": since(image.get("Created", 0)),
        "ID": short_id(image["Id"]) if trunc else image["Id"],
        "SharedSize": _size(image.get("SharedSize")),
        "Size": human_size(image.get("Size") or 0, 3),
        "UniqueSize": _size((image.get("Size") or 0) - max(image.get("SharedSize") or 0, 0)),
        "VirtualSize": human_size(image.get("VirtualSize") or image.get("Size") or 0, 3),
    }
    return [
        {**base, "Repository": repo, "Tag": tag, "Digest": digests.get(repo, "<none>")}
        for repo, tag in sorted(pairs)
    ]


def _count(value: Any) -> str:
    return "N/A" if value is None or value < 0 else str(value)


def _size(value: Any) -> str:
    return "N/A" if value is None or value < 0 else human_size(value, 3)


IMAGES_FLAGS = [
    flag("-a", "--all"),
    flag("-q", "--quiet"),
    flag("--digests"),
    flag("--no-trunc"),
    flag("-f", "--filter", kind=LIST),
    flag("--format", kind=VALUE, default=""),
    flag("--tree"),
]


def images(cli: Cli, argv: list[str]) -> int:
    opts = parse(IMAGES_FLAGS, argv)
    need_args(cli.command, opts.args, 0, 1)
    wanted = filters(opts.filter) or {}
    if opts.args:
        wanted.setdefault("reference", {})[opts.args[0]] = True
    listing = cli.client.get(
        "/images/json", params={"all": opts.all or None, "filters": wanted or None}
    )
    rows = [row for image in listing for row in image_rows(image, not opts.no_trunc)]
    fmt = opts.format
    if opts.quiet and fmt in ("", "table"):
        fmt = "{{.ID}}"
    table = IMAGES_DIGESTS_TABLE if opts.digests else IMAGES_TABLE
    cli.out(tables.render(rows, fmt, IMAGE_HEADERS, table))
    return 0


def inspect_images(cli: Cli, argv: list[str]) -> int:
    from dockyard.cli.inspect import inspect_kind

    return inspect_kind(cli, argv, "image")


HISTORY_TABLE = "{{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}


def history(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [
            flag("-H", "--human", default=True),
            flag("--no-trunc"),
            flag("-q", "--quiet"),
            flag("--format", kind=VALUE, default=""),
        ],
        argv,
    )
    need_args(cli.command, opts.args, 1, 1)
    entries = cli.client.get(f"/images/{cli.client.ref(opts.args[0])}/history")
    trunc = not opts.no_trunc
    rows = []
    for entry in entries:
        image_id = entry.get("Id") or "<missing>"
        created_by = entry.get("CreatedBy", "").replace("\t", " ")
        rows.append(
            {
                "ID": short_id(image_id) if trunc and image_id != "<missing>" else image_id,
                "CreatedSince": since(entry.get("Created", 0))
                if opts.human
                else go_time(entry.get("Created", 0)),
                "CreatedAt": go_time(entry.get("Created", 0)),
                "CreatedBy": ellipsis(created_by, 45) if trunc else created_by,
                "Size": human_size(entry.get("Size") or 0, 3)
                if opts.human
                else str(entry.get("Size") or 0),
                "Comment": entry.get("Comment", ""),
            }
        )
    fmt = "{{.ID}}" if opts.quiet and opts.format in ("", "table") else opts.format
    cli.out(tables.render(rows, fmt, HISTORY_HEADERS, HISTORY_TABLE))
    return 0


def rmi(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-f", "--force"), flag("--no-prune")], argv)
    need_args(cli.command, opts.args, 1)

    def one(name: str) -> None:
        params = {"force": opts.force or None, "noprune": opts.no_prune or None}
        for item in cli.client.delete(f"/images/{cli.client.ref(name)}", params=params) or []:
            for key, value in item.items():
                print(f"{key}: {value}")

    return each(opts.args, one)


def tag(cli: Cli, argv: list[str]) -> int:
    opts = parse([], argv)
    need_args(cli.command, opts.args, 2, 2)
    repo, tag_name = split_reference(opts.args[1])
    params = {"repo": repo, "tag": tag_name or "latest"}
    cli.client.post(f"/images/{cli.client.ref(opts.args[0])}/tag", params=params)
    return 0


def _stream_errors(message: dict[str, Any]) -> None:
    if message.get("error") or message.get("errorDetail"):
        detail = message.get("errorDetail") or {}
        raise APIError(500, detail.get("message") or message.get("error") or "")


def pull_image(cli: Cli, reference: str, out: IO[str]) -> None:
    """The pull stream as docker shows it on a pipe: one line per status change."""
    repo, tag_name = split_reference(reference.split("@")[0])
    params = {"fromImage": repo, "tag": tag_name or "latest"}
    if "@" in reference:
        params["tag"] = reference.split("@", 1)[1]
    headers = {"X-Registry-Auth": "e30="}
    for message in cli.client.stream("POST", "/images/create", params=params, headers=headers):
        _stream_errors(message)
        text = message.get("status", "")
        if message.get("progressDetail", {}).get("current") is not None:
            continue  # byte counts belong to a terminal display
        print(f"{message['id']}: {text}" if message.get("id") else text, file=out, flush=True)


def pull(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [flag("-q", "--quiet"), flag("-a", "--all-tags"), flag("--platform", kind=VALUE)], argv
    )
    need_args(cli.command, opts.args, 1, 1)
    reference = opts.args[0]
    out = open(os.devnull, "w") if opts.quiet else sys.stdout  # noqa: SIM115
    pull_image(cli, reference, out)
    if not opts.quiet:
        print(qualified(reference))
    return 0


def qualified(reference: str) -> str:
    """busybox -> docker.io/library/busybox:latest, as docker pull's last line."""
    repo, tag_name = split_reference(reference)
    first = repo.split("/")[0]
    if "/" not in repo:
        repo = f"docker.io/library/{repo}"
    elif not ("." in first or ":" in first or first == "localhost"):
        repo = f"docker.io/{repo}"
    return f"{repo}:{tag_name or 'latest'}"


def save(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-o", "--output", kind=VALUE), flag("--platform", kind=VALUE)], argv)
    need_args(cli.command, opts.args, 1)
    params = {"names": tuple(opts.args)}
    connection, response = cli.client.raw("GET", "/images/get", params=params)
    try:
        if opts.output is None:
            copy_response(response, None)
            return 0
        with (
            progress.transfer(f"Saving {', '.join(opts.args)}") as advance,
            open(opts.output, "wb") as target,
        ):
            while chunk := response.read(1 << 20):
                target.write(chunk)
                advance(len(chunk))
    finally:
        connection.close()
    return 0


def _open_input(path: str | None) -> tuple[IO[bytes], int | None]:
    if path in (None, "-"):
        if sys.stdin.isatty():
            raise Exit(1, "requested load from stdin, but stdin is empty")
        return sys.stdin.buffer, None
    f = open(path, "rb")  # noqa: SIM115
    return f, os.fstat(f.fileno()).st_size


def load(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-i", "--input", kind=VALUE), flag("-q", "--quiet")], argv)
    need_args(cli.command, opts.args, 0, 0)
    source, total = _open_input(opts.input)
    try:
        with progress.transfer("Loading", total) as advance:
            body = progress.CountingReader(source, advance)
            messages = list(
                cli.client.stream(
                    "POST",
                    "/images/load",
                    params={"quiet": opts.quiet or None},
                    body=body,
                    headers={"Content-Type": "application/x-tar"},
                )
            )
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    for message in messages:
        _stream_errors(message)
        if message.get("stream"):
            sys.stdout.write(message["stream"])
    sys.stdout.flush()
    return 0


def import_(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [
            flag("-c", "--change", kind=LIST),
            flag("-m", "--message", kind=VALUE),
            flag("--platform", kind=VALUE),
        ],
        argv,
    )
    need_args(cli.command, opts.args, 1, 2)
    repo, tag_name = split_reference(opts.args[1]) if len(opts.args) == 2 else ("", "")
    params: dict[str, Any] = {
        "fromSrc": "-",
        "repo": repo or None,
        "tag": tag_name or None,
        "message": opts.message,
        "changes": tuple(opts.change),
    }
    source, total = _open_input(opts.args[0])
    try:
        with progress.transfer("Importing", total) as advance:
            body = progress.CountingReader(source, advance)
            messages = list(cli.client.stream("POST", "/images/create", params=params, body=body))
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    for message in messages:
        _stream_errors(message)
        if message.get("status"):
            print(message["status"])
    return 0


def pruned_image_lines(deleted: list[dict]) -> list[str]:
    """As the docker CLI prints a prune: one line per image, lowercase, untagged first."""
    return [
        f"untagged: {item['Untagged']}" if item.get("Untagged") else f"deleted: {item['Deleted']}"
        for item in deleted
    ]


def prune(cli: Cli, argv: list[str]) -> int:
    opts = parse([flag("-a", "--all"), flag("-f", "--force"), flag("--filter", kind=LIST)], argv)
    wanted = filters(opts.filter) or {}
    if not opts.all:
        wanted.setdefault("dangling", {})["true"] = True
    warning = (
        "WARNING! This will remove all images without at least one container associated to them."
        if opts.all
        else "WARNING! This will remove all dangling images."
    )
    if not opts.force and not confirm(warning):
        return 0
    result = cli.client.post("/images/prune", params={"filters": wanted})
    lines = pruned_image_lines(result.get("ImagesDeleted") or [])
    text = "Deleted Images:\n" + "".join(line + "\n" for line in lines) + "\n" if lines else ""
    cli.out(text + f"Total reclaimed space: {human_size(result.get('SpaceReclaimed') or 0)}\n")
    return 0


def bootstrap(cli: Cli, argv: list[str]) -> int:
    """dockyard's own: build busybox or debian:<suite> from the host's tools."""
    opts = parse([flag("-q", "--quiet")], argv)
    need_args(cli.command, opts.args, 1, 1)
    image_id = ""
    with progress.status(f"Bootstrapping {opts.args[0]}") as shown:
        for message in cli.client.stream(
            "POST", "/images/bootstrap", params={"name": opts.args[0]}, timeout=3600
        ):
            _stream_errors(message)
            text = message.get("stream") or message.get("status") or ""
            if text.strip():
                shown.update(text.strip().splitlines()[-1])
                if not opts.quiet and not sys.stderr.isatty():
                    print(text.rstrip("\n"), file=sys.stderr)
            image_id = (message.get("aux") or {}).get("ID", image_id)
    if not image_id:
        raise Exit(1, "Error: the daemon sent no image ID")
    print(image_id)
    return 0
