"""Image listing, inspect, history, tag, rmi, prune and pull through the docker CLI and
docker-py, against a real daemon."""

from __future__ import annotations

import io
import json
import tarfile
import time
import uuid

import docker
import pytest


def _tar_with(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _import(daemon, *options: str, name: str = "") -> str:
    data = _tar_with({"f": uuid.uuid4().hex.encode()})
    result = daemon.docker("import", *options, "-", *([name] if name else []), input=data)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def _rmi(daemon, *names: str) -> None:
    daemon.docker("rmi", "-f", *names)


def test_images_inspect_and_history_shapes(daemon):
    listed = daemon.docker("images", "--format", "{{json .}}")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.decode().splitlines()]
    busybox = next(r for r in rows if r["Repository"] == "busybox")
    assert busybox["Tag"] == "latest"

    raw = daemon.client().api.images()
    entry = next(i for i in raw if "busybox:latest" in i["RepoTags"])
    assert set(entry) == {
        "Containers",
        "Created",
        "Id",
        "Labels",
        "ParentId",
        "RepoDigests",
        "RepoTags",
        "SharedSize",
        "Size",
        "VirtualSize",
    }
    assert entry["Id"].startswith("sha256:") and entry["Size"] > 0

    inspected = json.loads(daemon.docker("image", "inspect", "busybox").stdout)[0]
    assert inspected["Id"] == entry["Id"]
    assert inspected["RepoTags"] == ["busybox:latest"]
    assert inspected["Config"]["Cmd"] == ["sh"]
    assert inspected["RootFS"]["Type"] == "layers" and inspected["RootFS"]["Layers"]
    assert inspected["Os"] == "linux"
    for key in ("ContainerConfig", "GraphDriver", "Metadata", "Created", "Size"):
        assert key in inspected
    # `docker inspect` falls back to the image when no container has the name.
    assert json.loads(daemon.docker("inspect", "busybox").stdout)[0]["Id"] == entry["Id"]

    history = daemon.docker(
        "history", "--no-trunc", "--format", "{{.ID}} {{.CreatedBy}}", "busybox"
    )
    assert history.returncode == 0, history.stderr
    assert history.stdout.decode().startswith(entry["Id"] + " dockyard image bootstrap busybox")

    missing = daemon.docker("image", "inspect", "nosuchimage:1")
    assert missing.returncode == 1
    assert b"No such image: nosuchimage:1" in missing.stderr


def _image_events(daemon, since: float) -> list[tuple[str, str]]:
    until = f"{time.time() + 0.5:.3f}"
    result = daemon.docker(
        "events",
        "--since",
        f"{since:.3f}",
        "--until",
        until,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    )
    return [tuple(line.split(" ", 1)) for line in result.stdout.decode().splitlines()]


def test_tag_untag_and_delete(daemon):
    start = time.time()
    image_id = _import(daemon, name="names-a:1")
    try:
        assert daemon.docker("tag", "names-a:1", "names-b").returncode == 0
        assert daemon.docker("tag", image_id, "localhost:5000/x/names-c:v2").returncode == 0
        tags = json.loads(daemon.docker("image", "inspect", image_id).stdout)[0]["RepoTags"]
        assert sorted(tags) == ["localhost:5000/x/names-c:v2", "names-a:1", "names-b:latest"]

        # By ID with several repositories: refused without -f.
        conflict = daemon.docker("rmi", image_id[7:19])
        assert conflict.returncode == 1
        assert b"image is referenced in multiple repositories" in conflict.stderr

        untagged = daemon.docker("rmi", "names-b")
        assert untagged.stdout == b"Untagged: names-b:latest\n"
        daemon.docker("rmi", "localhost:5000/x/names-c:v2", check=True)
        deleted = daemon.docker("rmi", "names-a:1")
        lines = deleted.stdout.decode().splitlines()
        assert lines[0] == "Untagged: names-a:1"
        assert f"Deleted: {image_id}" in lines
        assert daemon.docker("image", "inspect", image_id).returncode == 1
        assert _image_events(daemon, start) == [
            ("tag", "names-a:1"),
            ("import", image_id),
            ("tag", "names-b:latest"),
            ("tag", "localhost:5000/x/names-c:v2"),
            ("untag", image_id),
            ("untag", image_id),
            ("untag", image_id),
            ("delete", image_id),
        ]
    finally:
        _rmi(daemon, image_id)


def test_bootstrap_streams_progress_then_the_id(fresh_daemon):
    api = fresh_daemon.client().api
    response = api._post(api._url("/images/bootstrap"), params={"name": "busybox"}, stream=True)
    assert response.status_code == 200
    lines = list(api._stream_helper(response, decode=True))
    assert lines[0] == {"status": "Bootstrapping busybox"}
    image_id = lines[-1]["aux"]["ID"]
    assert api.inspect_image("busybox:latest")["Id"] == image_id
    bad = api._post(api._url("/images/bootstrap"), params={"name": "alpine"})
    assert bad.status_code == 400
    assert "expected busybox or debian:<suite>" in bad.json()["message"]


def test_rmi_conflicts_with_a_container(daemon):
    image_id = _import(daemon, "--change", 'CMD ["/f"]', name="names-used:1")
    client = daemon.client()
    container = client.containers.create("names-used:1")
    try:
        refused = daemon.docker("rmi", "names-used:1")
        assert refused.returncode == 1
        assert (
            f'conflict: unable to remove repository reference "names-used:1" (must force) - '
            f"container {container.id[:12]} is using its referenced image {image_id[7:19]}"
        ).encode() in refused.stderr
        by_id = daemon.docker("rmi", image_id)
        assert by_id.returncode == 1
        assert b"image is being used by stopped container" in by_id.stderr

        with pytest.raises(docker.errors.APIError) as error:
            client.images.remove("names-used:1")
        assert error.value.status_code == 409

        forced = daemon.docker("rmi", "-f", "names-used:1")
        assert forced.returncode == 0, forced.stderr
        assert forced.stdout.decode().splitlines() == [
            "Untagged: names-used:1",
            f"Deleted: {image_id}",
        ]
        # The container still has its root filesystem.
        assert client.containers.get(container.id).attrs["Image"] == image_id
    finally:
        container.remove(force=True)
        _rmi(daemon, image_id)


def test_bad_names_are_refused_and_the_daemon_keeps_serving(daemon):
    bad = daemon.docker("tag", "busybox", "Bad:Name")
    assert bad.returncode == 1
    assert b"invalid reference format: repository name (library/Bad) must be lowercase" in (
        bad.stderr
    )
    with pytest.raises(docker.errors.APIError) as error:
        daemon.client().api.tag("busybox", "Bad", "x")
    assert error.value.status_code == 400
    assert "must be lowercase" in str(error.value)
    with pytest.raises(docker.errors.APIError) as error:
        daemon.client().api.tag("busybox", "ok", "bad:tag")
    assert error.value.status_code == 400
    assert daemon.docker("tag", "nosuchimage", "x:1").returncode == 1
    assert daemon.docker("version").returncode == 0


def test_pull_of_an_unreachable_image_is_a_clear_error(daemon):
    pulled = daemon.docker("pull", "unreachable.invalid/nothing:1")
    assert pulled.returncode == 1
    assert b"Error response from daemon: pull access denied for unreachable.invalid/nothing" in (
        pulled.stderr
    )
    with pytest.raises(docker.errors.NotFound):
        daemon.client().images.pull("nothing-here", tag="1")
    run = daemon.docker("run", "--rm", "nothing-here:2", "true")
    assert run.returncode == 125
    assert b"Unable to find image 'nothing-here:2' locally" in run.stderr
    assert daemon.docker("run", "--rm", "busybox", "true").returncode == 0


def test_filters_and_prune(daemon):
    dangling = _import(daemon)
    labelled = _import(daemon, "--change", "LABEL tier=gold", name="names-prune:1")
    try:
        ids = daemon.docker("images", "-q", "--no-trunc", "--filter", "dangling=true").stdout
        assert dangling.encode() in ids and labelled.encode() not in ids
        ids = daemon.docker("images", "-q", "--no-trunc", "--filter", "label=tier=gold").stdout
        assert ids.decode().split() == [labelled]
        ids = daemon.docker("images", "-q", "--no-trunc", "--filter", "reference=names-*").stdout
        assert ids.decode().split() == [labelled]
        bad = daemon.docker("images", "--filter", "nosuch=1")
        assert bad.returncode == 1 and b"invalid filter 'nosuch'" in bad.stderr

        pruned = daemon.client().images.prune()
        assert {"Deleted": dangling} in pruned["ImagesDeleted"]
        assert pruned["SpaceReclaimed"] > 0
        assert daemon.docker("image", "inspect", dangling).returncode == 1
        assert daemon.docker("image", "inspect", labelled).returncode == 0

        result = daemon.docker("image", "prune", "-a", "-f", "--filter", "label=tier=gold")
        assert result.returncode == 0, result.stderr
        assert f"deleted: {labelled}".encode() in result.stdout
        assert b"untagged: names-prune:1" in result.stdout
        assert daemon.docker("image", "inspect", "busybox").returncode == 0
    finally:
        _rmi(daemon, dangling, labelled)
