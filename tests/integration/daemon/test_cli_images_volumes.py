"""The dockyard CLI's image, volume and system commands next to the docker CLI's, and the
daemon auto-start."""

from __future__ import annotations

import json
import subprocess
import uuid

from conftest import new_daemon
from dockyard.client.autostart import start_daemon
from dockyard.client.transport import parse_host


def out(result) -> str:
    return result.stdout.decode()


def same(daemon, *args: str) -> str:
    # dockyard's output is taken before and after docker's: a relative time ("59 seconds ago",
    # then "About a minute ago") may change between two runs, but not twice within one pair.
    before, theirs, after = daemon.dockyard(*args), daemon.docker(*args), daemon.dockyard(*args)
    assert before.returncode == theirs.returncode == after.returncode == 0, before.stderr
    if args[0] == "images":
        # Two names of one image come out in either order from the docker CLI (it groups
        # them through a Go map): compare the rows, not their order.
        rows = [sorted(out(result).splitlines()) for result in (before, theirs, after)]
        assert rows[1] in (rows[0], rows[2]), args
    else:
        assert out(theirs) in (out(before), out(after)), args
    return out(before)


def test_images_tag_history_rmi(daemon) -> None:
    tag = "cli" + uuid.uuid4().hex[:6]
    assert daemon.dockyard("tag", "busybox", f"{tag}/bb:1").returncode == 0
    try:
        listing = same(daemon, "images")
        assert listing.splitlines()[0].split() == [
            "REPOSITORY",
            "TAG",
            "IMAGE",
            "ID",
            "CREATED",
            "SIZE",
        ]
        assert f"{tag}/bb " in listing
        same(daemon, "images", "-q")
        same(daemon, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}")
        same(daemon, "images", "--digests", "--format", "table {{.Repository}}\t{{.Digest}}")
        same(daemon, "image", "ls", f"{tag}/bb")
        same(daemon, "history", "--format", "{{.ID}} {{.CreatedBy}} {{.Size}}", "busybox")
        same(daemon, "image", "inspect", "--format", "{{.Id}} {{.RepoTags}}", "busybox")
    finally:
        removed = daemon.dockyard("rmi", f"{tag}/bb:1")
    assert removed.returncode == 0 and out(removed) == f"Untagged: {tag}/bb:1\n"
    mine, theirs = daemon.dockyard("rmi", f"{tag}/bb:1"), daemon.docker("rmi", f"{tag}/bb:1")
    assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr) != (0, b"")


def test_save_and_load(daemon, tmp_path) -> None:
    archive = tmp_path / "bb.tar"
    assert daemon.dockyard("save", "-o", str(archive), "busybox").returncode == 0
    assert archive.stat().st_size > 100_000
    loaded = daemon.dockyard("load", "-i", str(archive))
    assert (loaded.returncode, out(loaded)) == (0, "Loaded image: busybox:latest\n")
    loaded = daemon.dockyard("load", "-q", input=archive.read_bytes())
    assert loaded.returncode == 0


def test_volumes(daemon) -> None:
    volume = "cliv" + uuid.uuid4().hex[:6]
    assert out(daemon.dockyard("volume", "create", "--label", "a=b", volume)) == volume + "\n"
    try:
        same(daemon, "volume", "ls")
        same(daemon, "volume", "ls", "-q")
        same(daemon, "volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Labels}}")
        mine = json.loads(out(daemon.dockyard("volume", "inspect", volume)))
        assert mine == json.loads(out(daemon.docker("volume", "inspect", volume)))
        assert mine[0]["Labels"] == {"a": "b"}
        ran = daemon.dockyard(
            "run", "--rm", "-v", f"{volume}:/data", "busybox", "sh", "-c", "echo kept > /data/f"
        )
        assert ran.returncode == 0
        ran = daemon.dockyard(
            "run", "--rm", "--mount", f"source={volume},target=/d", "busybox", "cat", "/d/f"
        )
        assert out(ran) == "kept\n"
    finally:
        removed = daemon.dockyard("volume", "rm", volume)
    assert (removed.returncode, out(removed)) == (0, volume + "\n")
    mine, theirs = daemon.dockyard("volume", "rm", volume), daemon.docker("volume", "rm", volume)
    assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr)


def test_system(daemon) -> None:
    same(daemon, "system", "df")
    same(daemon, "info", "--format", "{{.Containers}} {{.Images}} {{.Driver}}")
    version = daemon.dockyard("version", "--format", "{{.Server.ApiVersion}}")
    assert out(version) == "1.41\n"


def test_autostart_starts_a_detached_daemon(tmp_path) -> None:
    """The start the CLI makes when nothing answers, on a throwaway socket and data root."""
    instance = new_daemon()
    try:
        log = instance.root / "autostart.log"
        args = [
            "--data-root",
            str(instance.data_root),
            "--exec-root",
            str(instance.exec_root),
            "--bridge",
            instance.bridge,
            "--config-file",
            str(instance.write_config()),
        ]
        instance.process = start_daemon(parse_host(instance.host), log, args)
        assert instance.ping()
        assert instance.process.poll() is None
        assert out(instance.dockyard("run", "--rm", "busybox", "echo", "up")) == "up\n"
        assert log.stat().st_size > 0
    finally:
        instance.cleanup()
        subprocess.run(["rm", "-rf", str(instance.root)], check=False)
