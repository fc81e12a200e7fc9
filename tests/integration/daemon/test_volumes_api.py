"""Volume objects through the docker CLI and docker-py: create, ls, inspect, rm, prune."""

from __future__ import annotations

import json
import os

import docker
import pytest


def _ls(daemon, *args: str) -> list[str]:
    result = daemon.docker("volume", "ls", "-q", *args)
    assert result.returncode == 0, result.stderr
    return sorted(result.stdout.decode().split())


def _rm(daemon, *names: str) -> None:
    daemon.docker("volume", "rm", "-f", *names)


def test_create_inspect_ls_rm(daemon):
    try:
        created = daemon.docker("volume", "create", "--label", "tier=db", "apivol1")
        assert created.returncode == 0, created.stderr
        assert created.stdout == b"apivol1\n"
        [volume] = json.loads(daemon.docker("volume", "inspect", "apivol1").stdout)
        assert volume["Name"] == "apivol1"
        assert volume["Driver"] == "local"
        assert volume["Scope"] == "local"
        assert volume["Labels"] == {"tier": "db"}
        assert volume["Mountpoint"] == str(daemon.data_root / "volumes/apivol1/_data")
        assert os.path.isdir(volume["Mountpoint"])
        assert volume["CreatedAt"].endswith("Z")
        # Creating an existing name returns it unchanged.
        again = daemon.client().volumes.create("apivol1", labels={"other": "x"})
        assert again.attrs["Labels"] == {"tier": "db"}
        assert "apivol1" in _ls(daemon)
        removed = daemon.docker("volume", "rm", "apivol1")
        assert removed.returncode == 0, removed.stderr
        assert "apivol1" not in _ls(daemon)
        assert not os.path.exists(volume["Mountpoint"])
        missing = daemon.docker("volume", "inspect", "apivol1")
        assert missing.returncode == 1
        assert b"no such volume" in missing.stderr
        # -f on a missing volume is quiet, as in Docker.
        assert daemon.docker("volume", "rm", "-f", "apivol1").returncode == 0
    finally:
        _rm(daemon, "apivol1")


def test_unnamed_create_gets_a_random_name(daemon):
    volume = daemon.client().volumes.create()
    try:
        assert len(volume.name) == 64 and int(volume.name, 16) >= 0
    finally:
        volume.remove()


def test_list_filters(daemon):
    client = daemon.client()
    names = ["flt-a1", "flt-b1", "flt-c1"]
    client.volumes.create("flt-a1", labels={"app": "web", "env": "prod"})
    client.volumes.create("flt-b1", labels={"app": "db"})
    client.volumes.create("flt-c1")
    try:
        assert _ls(daemon, "--filter", "name=flt-") == names
        assert _ls(daemon, "--filter", "name=flt-b") == ["flt-b1"]
        assert _ls(daemon, "--filter", "label=app") == ["flt-a1", "flt-b1"]
        assert _ls(daemon, "--filter", "label=app=db") == ["flt-b1"]
        assert _ls(daemon, "--filter", "driver=local", "--filter", "name=flt-c") == ["flt-c1"]
        daemon.docker("create", "--name", "flt-user", "-v", "flt-c1:/x", "busybox")
        assert "flt-c1" not in _ls(daemon, "--filter", "dangling=true")
        assert set(names) - {"flt-c1"} <= set(_ls(daemon, "--filter", "dangling=true"))
        assert "flt-c1" in _ls(daemon, "--filter", "dangling=false")
        assert "flt-a1" not in _ls(daemon, "--filter", "dangling=false")
        bad = daemon.docker("volume", "ls", "--filter", "colour=red")
        assert bad.returncode == 1
        assert b"invalid filter 'colour'" in bad.stderr
        bad = daemon.docker("volume", "ls", "--filter", "dangling=maybe")
        assert b"invalid filter 'dangling=maybe'" in bad.stderr
        listed = client.api.volumes()
        assert listed["Warnings"] is None
    finally:
        daemon.docker("rm", "-f", "flt-user")
        _rm(daemon, *names)


def test_create_errors(daemon):
    client = daemon.client()
    with pytest.raises(docker.errors.APIError) as error:
        client.volumes.create("a")
    assert error.value.status_code == 400
    assert "volume name is too short" in str(error.value)
    result = daemon.docker("volume", "create", "bad/name")
    assert result.returncode == 1
    assert b'"bad/name" includes invalid characters for a local volume name' in result.stderr
    result = daemon.docker("volume", "create", "-o", "colour=red", "badopt")
    assert b'create badopt: invalid option key: "colour"' in result.stderr
    result = daemon.docker("volume", "create", "-o", "device=/tmp", "badopt")
    assert b'missing required option: "type"' in result.stderr
    result = daemon.docker("volume", "create", "-d", "nfsplugin", "badopt")
    assert b'plugin "nfsplugin" not found' in result.stderr
    assert "badopt" not in _ls(daemon)
    assert daemon.docker("version").returncode == 0


def test_in_use_volume_is_not_removed(daemon):
    daemon.docker("volume", "create", "busyvol")
    created = daemon.docker("create", "--name", "busyvol-user", "-v", "busyvol:/data", "busybox")
    container_id = created.stdout.decode().strip()
    try:
        result = daemon.docker("volume", "rm", "busyvol")
        assert result.returncode == 1
        message = f"remove busyvol: volume is in use - [{container_id}]"
        assert message in result.stderr.decode()
        with pytest.raises(docker.errors.APIError) as error:
            daemon.client().volumes.get("busyvol").remove(force=True)
        assert error.value.status_code == 409
        daemon.docker("rm", "busyvol-user")
        assert daemon.docker("volume", "rm", "busyvol").returncode == 0
    finally:
        daemon.docker("rm", "-f", "busyvol-user")
        _rm(daemon, "busyvol")


def test_prune(daemon):
    client = daemon.client()
    client.volumes.create("prune-keep", labels={"keep": "yes"})
    client.volumes.create("prune-used")
    client.volumes.create("prune-gone")
    daemon.docker("create", "--name", "prune-user", "-v", "prune-used:/x", "busybox")
    try:
        daemon.docker(
            "run", "--rm", "-v", "prune-gone:/x", "busybox", "sh", "-c", "echo data >/x/f"
        )
        report = client.api.prune_volumes({"label!": "keep"})
        assert report["VolumesDeleted"] == ["prune-gone"]
        assert report["SpaceReclaimed"] > 0
        assert {"prune-keep", "prune-used"} <= set(_ls(daemon))
        result = daemon.docker("volume", "prune", "-f", "--filter", "label=keep=yes")
        assert result.returncode == 0, result.stderr
        assert b"prune-keep" in result.stdout
        assert "prune-keep" not in _ls(daemon)
        assert "prune-used" in _ls(daemon)
        assert client.api.prune_volumes()["VolumesDeleted"] is None
        bad = daemon.docker("volume", "prune", "-f", "--filter", "until=1h")
        assert b"invalid filter 'until'" in bad.stderr
    finally:
        daemon.docker("rm", "-f", "prune-user")
        _rm(daemon, "prune-keep", "prune-used", "prune-gone")


def test_volumes_survive_a_daemon_restart(fresh_daemon):
    fresh_daemon.docker("volume", "create", "--label", "k=v", "durable")
    fresh_daemon.docker(
        "run", "--rm", "-v", "durable:/d", "busybox", "sh", "-c", "echo kept > /d/f"
    )
    fresh_daemon.kill9()
    fresh_daemon.start()
    [volume] = json.loads(fresh_daemon.docker("volume", "inspect", "durable").stdout)
    assert volume["Labels"] == {"k": "v"}
    result = fresh_daemon.docker("run", "--rm", "-v", "durable:/d", "busybox", "cat", "/d/f")
    assert result.stdout == b"kept\n"
