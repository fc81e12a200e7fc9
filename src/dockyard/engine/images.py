"""Images as the Engine API shows them: list (with Docker's filters), inspect, history, tag,
remove, prune and disk usage, over dockyard.image's store, with Docker's image events."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard.engine import container_list
from dockyard.engine.errors import InvalidArgument
from dockyard.engine.timefmt import parse_timestamp
from dockyard.image.errors import Conflict, NotFound
from dockyard.image.reference import parse_normalized
from dockyard.image.removal import ContainerLookup, ContainerUse
from dockyard.image.store import Image

if TYPE_CHECKING:
    from dockyard.engine.engine import Engine

NO_TIME = "0001-01-01T00:00:00Z"
# container.Config as dockerd marshals it: these keys always, in this order; others after.
_CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "",
    "Domainname": "",
    "User": "",
    "AttachStdin": False,
    "AttachStdout": False,
    "AttachStderr": False,
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "Env": None,
    "Cmd": None,
    "Image": "",
    "Volumes": None,
    "WorkingDir": "",
    "Entrypoint": None,
    "OnBuild": None,
    "Labels": None,
}
_LIST_FILTERS = {"dangling", "label", "before", "since", "reference"}
_PRUNE_FILTERS = {"dangling", "label", "until"}


def scratch_dir(engine: Engine) -> Path:
    """Where archive work keeps temporary files: on the data root's filesystem."""
    path = engine.config.data_root / "tmp"
    path.mkdir(exist_ok=True, mode=0o700)
    return path


def container_users(engine: Engine) -> ContainerLookup:
    """The containers lookup rmi's conflict rules need."""

    def users(image_id: str) -> list[ContainerUse]:
        return [
            ContainerUse(r["Id"], bool(r["State"]["Running"]))
            for r in engine.containers.all()
            if r["Image"] == image_id
        ]

    return users


def publish(engine: Engine, action: str, image_id: str, name: str | None = None) -> None:
    engine.events.publish("image", action, image_id, {"name": name or image_id})


# -- list --------------------------------------------------------------------------------------


def summary(image: Image, tags: list[str], digests: list[str]) -> dict:
    if not image.repo_tags and not image.repo_digests:
        tags, digests = ["<none>:<none>"], ["<none>@<none>"]
    return {
        "Containers": -1,
        "Created": image.config.created_unix,
        "Id": image.id,
        "Labels": image.config.container_config.get("Labels"),
        "ParentId": image.parent,
        "RepoDigests": digests,
        "RepoTags": tags,
        "SharedSize": -1,
        "Size": image.size,
        "VirtualSize": image.size,
    }


def list_images(engine: Engine, *, all_: bool, wanted: dict[str, list[str]]) -> list[dict]:
    _check_filters(wanted, _LIST_FILTERS)
    dangling = _dangling(wanted)
    before = _created_of(engine, wanted.get("before"))
    since = _created_of(engine, wanted.get("since"))
    patterns = wanted.get("reference") or []
    out = []
    for image in engine.images.list(all=all_, dangling=dangling):
        created = image.config.created_time
        if before is not None and created >= before:
            continue
        if since is not None and created <= since:
            continue
        if not _labels_match(image, wanted.get("label") or []):
            continue
        tags, digests = list(image.repo_tags), list(image.repo_digests)
        if patterns:
            tags = [t for t in tags if _reference_match(patterns, t)]
            digests = [d for d in digests if _reference_match(patterns, d)]
            if not tags and not digests:
                continue
        out.append(summary(image, tags, digests))
    return out


def _check_filters(wanted: dict[str, list[str]], accepted: set[str]) -> None:
    for key in wanted:
        if key not in accepted:
            raise InvalidArgument(f"invalid filter '{key}'")


def _dangling(wanted: dict[str, list[str]]) -> bool | None:
    values = wanted.get("dangling")
    if not values:
        return None
    for value in values:
        if value.lower() not in ("true", "1", "false", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={value}'")
    return values[-1].lower() in ("true", "1")


def _created_of(engine: Engine, names: list[str] | None) -> float | None:
    if not names:
        return None
    return engine.images.get(names[-1]).config.created_time


def _labels_match(image: Image, wanted: list[str]) -> bool:
    labels = image.config.container_config.get("Labels") or {}
    for item in wanted:
        key, has_value, value = item.partition("=")
        if key not in labels or (has_value and labels[key] != value):
            return False
    return True


def _reference_match(patterns: list[str], familiar: str) -> bool:
    """Docker's FamiliarMatch: a pattern matches the familiar string or the familiar name."""
    ref = parse_normalized(familiar)
    return any(
        _path_match(pattern, familiar) or _path_match(pattern, ref.familiar_name)
        for pattern in patterns
    )


def _path_match(pattern: str, text: str) -> bool:
    """Go's path.Match: `*` and `?` stop at `/`; character classes as in Go."""
    regex, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                return False  # Go reports ErrBadPattern: no match
            body = pattern[i + 1 : end]
            regex += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
            i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            regex += re.escape(pattern[i])
        else:
            regex += re.escape(char)
        i += 1
    try:
        return re.fullmatch(regex, text) is not None
    except re.error:
        return False


# -- inspect and history --------------------------------------------------------------------


def full_config(config: dict | None) -> dict:
    """A container config as dockerd marshals one (defaults filled in, Docker's key order)."""
    config = config or {}
    out = {key: config.get(key, default) for key, default in _CONFIG_DEFAULTS.items()}
    out.update((key, value) for key, value in config.items() if key not in out)
    return out


def inspect(engine: Engine, name: str) -> dict:
    image = engine.images.get(name)
    doc = image.config.doc
    out: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": list(image.repo_tags),
        "RepoDigests": list(image.repo_digests),
        "Parent": image.parent,
        "Comment": doc.get("comment") or "",
        "Created": image.config.created or NO_TIME,
        "Container": doc.get("container") or "",
        "ContainerConfig": full_config(doc.get("container_config")),
        "DockerVersion": doc.get("docker_version") or "",
        "Author": doc.get("author") or "",
        "Config": full_config(image.config.container_config),
        "Architecture": image.config.platform.architecture,
    }
    if image.config.platform.variant:
        out["Variant"] = image.config.platform.variant
    out["Os"] = image.config.platform.os
    if doc.get("os.version"):
        out["OsVersion"] = doc["os.version"]
    out.update(
        Size=image.size,
        VirtualSize=image.size,
        GraphDriver=_graph_driver(engine, image),
        RootFS={"Type": "layers", "Layers": list(image.config.diff_ids)},
        Metadata={"LastTagTime": NO_TIME},
    )
    return out


def _graph_driver(engine: Engine, image: Image) -> dict:
    if image.top_layer is None:
        return {"Data": None, "Name": engine.snapshots_driver}
    dirs = engine.layers.lower_dirs(image.top_layer)
    top = dirs[0]
    data = {}
    if dirs[1:]:
        data["LowerDir"] = ":".join(str(d) for d in dirs[1:])
    data.update(
        MergedDir=str(top.parent / "merged"), UpperDir=str(top), WorkDir=str(top.parent / "work")
    )
    return {"Data": data, "Name": engine.snapshots_driver}


def history(engine: Engine, name: str) -> list[dict]:
    return [
        {
            "Id": item.id,
            "Created": item.created,
            "CreatedBy": item.created_by,
            "Tags": list(item.tags) or None,
            "Size": item.size,
            "Comment": item.comment,
        }
        for item in engine.images.history(name)
    ]


# -- tag, remove, prune ---------------------------------------------------------------------


def tag(engine: Engine, name: str, repo: str, tag_name: str) -> None:
    """`POST /images/{name}/tag`: the CLI sends the repository fully qualified."""
    if not repo:
        raise InvalidArgument("repository name must have at least one component")
    target = f"{repo}:{tag_name}" if tag_name else repo
    ref = engine.images.tag(name, target)
    publish(engine, "tag", engine.images.resolve(name), ref.familiar)


def remove(engine: Engine, name: str, *, force: bool, prune: bool) -> list[dict[str, str]]:
    image_id = engine.images.resolve(name)
    lineage = _lineage(engine, image_id)
    records = engine.images.remove(
        name, force=force, prune=prune, containers=container_users(engine)
    )
    _publish_removal(engine, image_id, lineage, records)
    return records


def _lineage(engine: Engine, image_id: str) -> set[str]:
    """The image and its local ancestors: what a removal may delete as images."""
    out: set[str] = set()
    while image_id and image_id not in out:
        out.add(image_id)
        try:
            image_id = engine.images.get(image_id).parent
        except LookupError:
            break
    return out


def _publish_removal(
    engine: Engine, image_id: str, lineage: set[str], records: list[dict[str, str]]
) -> None:
    for record in records:
        if "Untagged" in record:
            publish(engine, "untag", image_id)
        elif record.get("Deleted") in lineage:
            publish(engine, "delete", record["Deleted"])


def prune(engine: Engine, wanted: dict[str, list[str]]) -> dict:
    """`docker image prune [-a]`: dangling images, or with dangling=false every image no
    container uses; conflicts (children, other containers) skip an image, as in Docker."""
    _check_filters(wanted, _PRUNE_FILTERS)
    dangling_only = _dangling(wanted) is not False
    until = _until(wanted.get("until"))
    sizes = _layer_sizes(engine)
    used = {r["Image"] for r in engine.containers.all()}
    deleted: list[dict[str, str]] = []
    for image in engine.images.list(all=False, dangling=True if dangling_only else None):
        if image.id in used or (until is not None and image.config.created_time >= until):
            continue
        if not _labels_match(image, wanted.get("label") or []):
            continue
        names = [*image.repo_tags, *image.repo_digests]
        try:
            for name in names:
                deleted += remove(engine, name, force=False, prune=True)
            if not names:
                deleted += remove(engine, image.id, force=False, prune=True)
        except (Conflict, NotFound):
            continue
    reclaimed = sum(sizes.get(r.get("Deleted", ""), 0) for r in deleted)
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed}


def _until(values: list[str] | None) -> float | None:
    if not values:
        return None
    try:
        return parse_timestamp(values[-1])
    except ValueError as error:
        raise InvalidArgument(str(error)) from None


def _layer_sizes(engine: Engine) -> dict[str, int]:
    return {
        layer.chain_id: layer.size
        for image in engine.images.list(all=True)
        for layer in image.layers
    }


# -- disk usage -------------------------------------------------------------------------------


def disk_usage(engine: Engine) -> dict:
    """`GET /system/df`: images with their container counts and shared sizes, containers
    with their sizes, volumes where the engine has them."""
    images = engine.images.list(all=True)
    records = engine.containers.all()
    users = Counter(r["Image"] for r in records)
    layer_users = Counter(layer.chain_id for image in images for layer in image.layers)
    sizes = {layer.chain_id: layer.size for image in images for layer in image.layers}
    image_rows = []
    for image in images:
        row = summary(image, list(image.repo_tags), list(image.repo_digests))
        row["Containers"] = users[image.id]
        row["SharedSize"] = sum(
            layer.size for layer in image.layers if layer_users[layer.chain_id] > 1
        )
        image_rows.append(row)
    return {
        "LayersSize": sum(sizes.values()),
        "Images": image_rows,
        "Containers": [container_list.summary(engine, r, size=True) for r in records],
        "Volumes": _volume_usage(engine),
        "BuildCache": [],
    }


def _volume_usage(engine: Engine) -> list[dict]:
    volumes = getattr(engine, "volumes", None)  # absent in engines built without volumes
    if volumes is None:
        return []
    return [{**v, "UsageData": volumes.usage(v["Name"])} for v in volumes.list()]
