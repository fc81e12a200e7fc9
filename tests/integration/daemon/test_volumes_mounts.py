"""Volumes in containers: -v, --mount, image VOLUMEs with copy-up, --volumes-from, rm -v and
--rm, local volumes backed by tmpfs or a bind, Docker's Mounts entries and volume events."""

from __future__ import annotations

import json
import os
import tempfile
import time

import docker
import pytest


def _volumes(daemon) -> set[str]:
    return set(daemon.docker("volume", "ls", "-q").stdout.decode().split())


def _mounts(daemon, container: str) -> list[dict]:
    return json.loads(daemon.docker("inspect", "-f", "{{json .Mounts}}", container).stdout)


@pytest.fixture(scope="module")
def volume_image(daemon):
    """An image declaring VOLUME /data, holding /data/file (uid 1234, mode 0640) and a link."""
    script = (
        "mkdir -p /data/sub && echo from-image > /data/file && chown 1234:99 /data/file "
        "&& chmod 640 /data/file && ln -s file /data/link && chmod 750 /data"
    )
    daemon.docker("run", "--name", "volimg-src", "busybox", "sh", "-c", script)
    try:
        result = daemon.docker("commit", "--change", "VOLUME /data", "volimg-src", "volimg:1")
        assert result.returncode == 0, result.stderr
    finally:
        daemon.docker("rm", "-f", "volimg-src")
    yield "volimg:1"
    daemon.docker("rmi", "-f", "volimg:1")


def test_named_volume_persists_across_containers(daemon):
    try:
        first = daemon.docker(
            "run", "--rm", "-v", "persist1:/data", "busybox", "sh", "-c", "echo one > /data/f"
        )
        assert first.returncode == 0, first.stderr
        assert "persist1" in _volumes(daemon)  # -v created it, --rm keeps named volumes
        second = daemon.client().containers.run(
            "busybox",
            "cat /data/f",
            volumes={"persist1": {"bind": "/data", "mode": "ro"}},
            remove=True,
        )
        assert second == b"one\n"
        result = daemon.docker(
            "run", "--rm", "-v", "persist1:/data:ro", "busybox", "touch", "/data/x"
        )
        assert result.returncode != 0
        assert b"Read-only file system" in result.stderr
    finally:
        daemon.docker("volume", "rm", "-f", "persist1")


def test_mounts_entries_and_ps_filter(daemon):
    host_dir = tempfile.mkdtemp()
    try:
        created = daemon.docker(
            "create",
            "--name",
            "mnt-entries",
            "-v",
            "entryvol:/named",
            "-v",
            f"{host_dir}:/host:ro",
            "--mount",
            "type=volume,dst=/anon",
            "busybox",
        )
        assert created.returncode == 0, created.stderr
        by_dest = {m["Destination"]: m for m in _mounts(daemon, "mnt-entries")}
        named = by_dest["/named"]
        assert named == {
            "Type": "volume",
            "Name": "entryvol",
            "Source": str(daemon.data_root / "volumes/entryvol/_data"),
            "Destination": "/named",
            "Driver": "local",
            "Mode": "z",
            "RW": True,
            "Propagation": "",
        }
        assert by_dest["/host"] == {
            "Type": "bind",
            "Source": host_dir,
            "Destination": "/host",
            "Mode": "ro",
            "RW": False,
            "Propagation": "rprivate",
        }
        anonymous = by_dest["/anon"]
        assert len(anonymous["Name"]) == 64 and anonymous["Mode"] == ""
        [volume] = json.loads(daemon.docker("volume", "inspect", anonymous["Name"]).stdout)
        assert "com.docker.volume.anonymous" in volume["Labels"]
        listed = daemon.docker("ps", "-a", "-q", "--no-trunc", "--filter", "volume=entryvol")
        assert listed.stdout.decode().strip() == created.stdout.decode().strip()
        assert daemon.docker("ps", "-aq", "--filter", "volume=nosuchvol").stdout == b""
        # rm without -v keeps the anonymous volume.
        daemon.docker("rm", "mnt-entries")
        assert anonymous["Name"] in _volumes(daemon)
        daemon.docker("volume", "rm", anonymous["Name"])
    finally:
        daemon.docker("rm", "-f", "mnt-entries")
        daemon.docker("volume", "rm", "-f", "entryvol")
        os.rmdir(host_dir)


def test_image_volume_is_anonymous_and_copied_up(daemon, volume_image):
    before = _volumes(daemon)
    run = daemon.docker(
        "run",
        "--name",
        "imgvol",
        volume_image,
        "sh",
        "-c",
        "stat -c '%u:%g %a' /data/file /data; readlink /data/link; cat /data/file",
    )
    try:
        assert run.returncode == 0, run.stderr
        assert run.stdout == b"1234:99 640\n0:0 750\nfile\nfrom-image\n"
        [new] = _volumes(daemon) - before
        assert len(new) == 64
        [point] = _mounts(daemon, "imgvol")
        assert point["Name"] == new and point["Destination"] == "/data"
        removed = daemon.docker("rm", "-v", "imgvol")
        assert removed.returncode == 0, removed.stderr
        assert new not in _volumes(daemon)
    finally:
        daemon.docker("rm", "-f", "imgvol")


def test_rm_flag_removes_anonymous_volumes_only(daemon, volume_image):
    before = _volumes(daemon)
    try:
        result = daemon.docker(
            "run", "--rm", "-v", "rmkept:/kept", "-v", "/scratch", volume_image, "ls", "/data"
        )
        assert result.returncode == 0, result.stderr
        assert _volumes(daemon) - before == {"rmkept"}
    finally:
        daemon.docker("volume", "rm", "-f", "rmkept")


def test_named_volume_over_image_path_gets_the_content_unless_nocopy(daemon, volume_image):
    try:
        copied = daemon.docker(
            "run", "--rm", "-v", "copyvol:/data", volume_image, "cat", "/data/file"
        )
        assert copied.stdout == b"from-image\n"
        nocopy = daemon.docker(
            "run",
            "--rm",
            "--mount",
            "type=volume,src=nocopyvol,dst=/data,volume-nocopy",
            volume_image,
            "ls",
            "-A",
            "/data",
        )
        assert nocopy.returncode == 0, nocopy.stderr
        assert nocopy.stdout == b""
        nocopy = daemon.docker(
            "run", "--rm", "-v", "nocopyvol2:/data:nocopy", volume_image, "ls", "-A", "/data"
        )
        assert nocopy.stdout == b""
        # A volume that already holds data is left as it is.
        daemon.docker(
            "run",
            "--rm",
            "-v",
            "copyvol:/d",
            "busybox",
            "sh",
            "-c",
            "rm -r /d/* && echo mine > /d/own",
        )
        kept = daemon.docker("run", "--rm", "-v", "copyvol:/data", volume_image, "ls", "/data")
        assert kept.stdout == b"own\n"
        # A mount over the image's VOLUME path replaces the anonymous volume.
        before = _volumes(daemon)
        daemon.docker("run", "--rm", "-v", "copyvol:/data", volume_image, "true")
        assert _volumes(daemon) == before
    finally:
        daemon.docker("volume", "rm", "-f", "copyvol", "nocopyvol", "nocopyvol2")


def test_volumes_from(daemon):
    host_dir = tempfile.mkdtemp()
    try:
        daemon.docker(
            "create",
            "--name",
            "vf-src",
            "-v",
            "vfvol:/shared",
            "-v",
            f"{host_dir}:/hostdir",
            "busybox",
        )
        result = daemon.docker(
            "run",
            "--rm",
            "--volumes-from",
            "vf-src",
            "busybox",
            "sh",
            "-c",
            "echo hello > /shared/f && echo there > /hostdir/g",
        )
        assert result.returncode == 0, result.stderr
        with open(os.path.join(host_dir, "g")) as f:
            assert f.read() == "there\n"
        read = daemon.docker(
            "run",
            "--rm",
            "--volumes-from",
            "vf-src:ro",
            "busybox",
            "sh",
            "-c",
            "cat /shared/f; touch /shared/x",
        )
        assert read.stdout == b"hello\n"
        assert b"Read-only file system" in read.stderr
        daemon.docker("create", "--name", "vf-dst", "--volumes-from", "vf-src:ro", "busybox")
        by_dest = {m["Destination"]: m for m in _mounts(daemon, "vf-dst")}
        assert by_dest["/shared"]["Name"] == "vfvol" and by_dest["/shared"]["RW"] is False
        assert by_dest["/hostdir"]["Source"] == host_dir
        # docker-py: the CLI would answer the 404 by trying to pull the image.
        with pytest.raises(docker.errors.NotFound) as error:
            daemon.client().api.create_container(
                "busybox", host_config={"VolumesFrom": ["nosuchcontainer"]}
            )
        assert "No such container: nosuchcontainer" in str(error.value)
        bad = daemon.docker("create", "--volumes-from", "vf-src:rx", "busybox")
        assert b"invalid mode: rx" in bad.stderr
    finally:
        daemon.docker("rm", "-f", "vf-src", "vf-dst")
        daemon.docker("volume", "rm", "-f", "vfvol")
        for name in os.listdir(host_dir):
            os.unlink(os.path.join(host_dir, name))
        os.rmdir(host_dir)


def test_tmpfs_backed_volume_is_mounted_while_used(daemon):
    daemon.docker(
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=100m,uid=1000",
        "tmpvol",
    )
    data = str(daemon.data_root / "volumes/tmpvol/_data")
    try:
        result = daemon.docker(
            "run",
            "--rm",
            "-v",
            "tmpvol:/t",
            "busybox",
            "sh",
            "-c",
            "df -k /t | tail -1; stat -c %u /t",
        )
        assert result.returncode == 0, result.stderr
        fields = result.stdout.decode().split()
        assert fields[0] == "tmpfs" and fields[1] == "102400"
        assert fields[-1] == "1000"
        assert not os.path.ismount(data)  # no running container uses it any more
        daemon.docker(
            "run", "-d", "--name", "tmpvol-user", "-v", "tmpvol:/t", "busybox", "sleep", "60"
        )
        assert os.path.ismount(data)
        daemon.docker("rm", "-f", "tmpvol-user")
        assert not os.path.ismount(data)
    finally:
        daemon.docker("rm", "-f", "tmpvol-user")
        daemon.docker("volume", "rm", "-f", "tmpvol")


def test_bind_type_local_volume(daemon):
    host_dir = tempfile.mkdtemp()
    try:
        with open(os.path.join(host_dir, "hostfile"), "w") as f:
            f.write("on host\n")
        daemon.client().volumes.create(
            "bindvol", driver_opts={"type": "none", "o": "bind", "device": host_dir}
        )
        result = daemon.docker(
            "run",
            "--rm",
            "-v",
            "bindvol:/b",
            "busybox",
            "sh",
            "-c",
            "cat /b/hostfile; echo back > /b/new",
        )
        assert result.stdout == b"on host\n"
        with open(os.path.join(host_dir, "new")) as f:
            assert f.read() == "back\n"
        # Removing the volume never touches the host directory.
        assert daemon.docker("volume", "rm", "bindvol").returncode == 0
        assert sorted(os.listdir(host_dir)) == ["hostfile", "new"]
    finally:
        daemon.docker("volume", "rm", "-f", "bindvol")
        for name in os.listdir(host_dir):
            os.unlink(os.path.join(host_dir, name))
        os.rmdir(host_dir)


def test_bad_specs(daemon):
    try:
        relative = daemon.docker("run", "--rm", "-v", "relative:/x", "busybox", "true")
        assert relative.returncode == 0, relative.stderr
        assert "relative" in _volumes(daemon)
        client = daemon.client()
        with pytest.raises(docker.errors.APIError) as error:
            client.api.create_container(
                "busybox", host_config=client.api.create_host_config(binds=[":/x"])
            )
        assert error.value.status_code == 400
        assert "invalid volume specification: ':/x'" in str(error.value)
        cli = daemon.docker("run", "--rm", "-v", ":/x", "busybox", "true")
        assert cli.returncode == 125
        assert b"invalid spec: :/x" in cli.stderr
        slash = daemon.docker("run", "--rm", "-v", "bad/name:/x", "busybox", "true")
        assert b"includes invalid characters for a local volume name" in slash.stderr
        assert daemon.docker("ps", "-aq").stdout == b""
    finally:
        daemon.docker("volume", "rm", "-f", "relative")


def test_volume_events(daemon):
    since = str(time.time() - 1)
    daemon.docker("run", "--rm", "-v", "eventvol:/e", "busybox", "true")
    daemon.docker("volume", "rm", "eventvol")
    until = str(time.time() + 1)
    result = daemon.docker(
        "events",
        "--since",
        since,
        "--until",
        until,
        "--filter",
        "type=volume",
        "--filter",
        "volume=eventvol",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}",
    )
    lines = [line.split(" ", 2) for line in result.stdout.decode().splitlines()]
    actions = [(action, actor) for action, actor, _ in lines]
    assert actions == [
        ("create", "eventvol"),
        ("mount", "eventvol"),
        ("unmount", "eventvol"),
        ("destroy", "eventvol"),
    ]
    mount = json.loads(lines[1][2])
    assert mount["destination"] == "/e" and mount["read/write"] == "true"
    assert mount["driver"] == "local" and len(mount["container"]) == 64
