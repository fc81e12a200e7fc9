"""Images as archives and from containers: save/load, import, commit, export, system df, and
the image events they publish, through the docker CLI and docker-py."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time


def _events(daemon, since: float, *filters: str) -> list[dict]:
    args = ["events", "--since", f"{since:.3f}", "--until", f"{time.time() + 0.5:.3f}"]
    for item in filters:
        args += ["--filter", item]
    result = daemon.docker(*args, "--format", "{{json .}}")
    return [json.loads(line) for line in result.stdout.decode().splitlines()]


def test_save_then_load_into_a_fresh_daemon_keeps_the_id(daemon, fresh_daemon, tmp_path):
    image_id = json.loads(daemon.docker("image", "inspect", "busybox").stdout)[0]["Id"]
    daemon.docker("tag", "busybox", "busybox:local", check=True)
    archive = tmp_path / "bb.tar"
    try:
        start = time.time()
        saved = daemon.docker("save", "-o", str(archive), "busybox:local")
        assert saved.returncode == 0, saved.stderr
        with tarfile.open(archive) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == ["busybox:local"]
        assert [e["Action"] for e in _events(daemon, start, "type=image")] == ["save"]
    finally:
        daemon.docker("rmi", "busybox:local")

    fresh_daemon.docker("rmi", "busybox", check=True)
    loaded = fresh_daemon.docker("load", "-i", str(archive))
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout == b"Loaded image: busybox:local\n"
    inspected = json.loads(fresh_daemon.docker("image", "inspect", "busybox:local").stdout)[0]
    assert inspected["Id"] == image_id
    run = fresh_daemon.docker("run", "--rm", "busybox:local", "echo", "loaded")
    assert run.stdout == b"loaded\n", run.stderr

    # docker-py: get (a stream of chunks) and load back, quiet.
    client = fresh_daemon.client()
    data = b"".join(client.images.get(image_id).save())
    client.images.remove("busybox:local")
    (loaded_image,) = client.images.load(data)
    assert loaded_image.id == image_id
    bad = fresh_daemon.docker("load", input=b"not a tar at all" * 100)
    assert bad.returncode == 1 and b"invalid archive" in bad.stderr
    assert fresh_daemon.docker("version").returncode == 0


def test_import_with_changes(daemon, tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "greeting").write_text("from import\n")
    archive = tmp_path / "root.tar"
    subprocess.run(["tar", "-C", str(root), "-czf", str(archive), "."], check=True)
    imported = daemon.docker(
        "import",
        "--change",
        "ENV GREETING=hi",
        "--change",
        'ENTRYPOINT ["/bin/cat"]',
        "--message",
        "my import",
        str(archive),
        "archives-imported:1",
    )
    assert imported.returncode == 0, imported.stderr
    image_id = imported.stdout.decode().strip()
    try:
        assert image_id.startswith("sha256:")
        config = json.loads(daemon.docker("image", "inspect", image_id).stdout)[0]
        assert config["RepoTags"] == ["archives-imported:1"]
        assert config["Config"]["Env"] == ["GREETING=hi"]
        assert config["Config"]["Entrypoint"] == ["/bin/cat"]
        assert config["Comment"] == "my import"
        history = daemon.docker("history", "--format", "{{.Comment}}", image_id)
        assert history.stdout == b"my import\n"
        bad = daemon.docker("import", "--change", "NOSUCH x", str(archive))
        assert bad.returncode == 1
        url = daemon.docker("import", "http://127.0.0.1:1/x.tar")
        assert url.returncode == 1 and b"not supported" in url.stderr
    finally:
        daemon.docker("rmi", "-f", image_id)


def test_commit_then_run_the_new_image(daemon):
    client = daemon.client()
    start = time.time()
    container = client.containers.run(
        "busybox", ["sh", "-c", "echo committed > /data.txt && rm /bin/vi"], detach=True
    )
    try:
        assert container.wait(timeout=30)["StatusCode"] == 0
        result = daemon.docker(
            "commit",
            "--change",
            "LABEL stage=one",
            "--change",
            'CMD ["cat", "/data.txt"]',
            "-m",
            "a message",
            "-a",
            "someone",
            container.id,
            "archives-committed:1",
        )
        assert result.returncode == 0, result.stderr
        image_id = result.stdout.decode().strip()
        inspected = json.loads(daemon.docker("image", "inspect", image_id).stdout)[0]
        busybox_id = json.loads(daemon.docker("image", "inspect", "busybox").stdout)[0]["Id"]
        assert inspected["Parent"] == busybox_id
        assert inspected["Config"]["Labels"] == {"stage": "one"}
        assert inspected["Author"] == "someone" and inspected["Comment"] == "a message"
        assert inspected["Container"] == container.id
        assert len(inspected["RootFS"]["Layers"]) == 2

        run = daemon.docker("run", "--rm", "archives-committed:1")
        assert run.stdout == b"committed\n", run.stderr
        gone = daemon.docker("run", "--rm", "archives-committed:1", "ls", "/bin/vi")
        assert gone.returncode != 0

        history = daemon.docker("history", "--format", "{{.ID}} {{.Comment}}", image_id)
        assert history.stdout.decode().splitlines()[0] == f"{image_id[7:19]} a message"
        actions = [
            (e["Type"], e["Action"]) for e in _events(daemon, start, f"container={container.id}")
        ]
        assert ("container", "commit") in actions

        # docker-py's commit, on a running container (paused meanwhile).
        running = client.containers.run("busybox", ["sleep", "30"], detach=True)
        try:
            snapshot = running.commit("archives-committed", "2")
            assert snapshot.tags == ["archives-committed:2"]
            assert client.containers.get(running.id).status == "running"
        finally:
            running.remove(force=True)
    finally:
        container.remove(force=True)
        daemon.docker("rmi", "-f", "archives-committed:1", "archives-committed:2")


def test_export_of_a_stopped_and_a_running_container(daemon):
    client = daemon.client()
    stopped = client.containers.run(
        "busybox", ["sh", "-c", "echo exported > /out.txt"], detach=True
    )
    running = client.containers.run("busybox", ["sleep", "30"], detach=True)
    try:
        stopped.wait(timeout=30)
        result = daemon.docker("export", stopped.id)
        assert result.returncode == 0, result.stderr
        with tarfile.open(fileobj=io.BytesIO(result.stdout)) as tar:
            assert tar.extractfile("out.txt").read() == b"exported\n"
            assert "bin/busybox" in tar.getnames()
        data = b"".join(running.export())
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            assert "bin/sh" in tar.getnames()
        missing = daemon.docker("export", "nosuchcontainer")
        assert missing.returncode == 1 and b"No such container: nosuchcontainer" in missing.stderr
    finally:
        stopped.remove(force=True)
        running.remove(force=True)


def test_system_df(daemon):
    client = daemon.client()
    container = client.containers.run("busybox", ["sh", "-c", "echo x > /x"], detach=True)
    try:
        container.wait(timeout=30)
        usage = client.df()
        assert usage["LayersSize"] > 0
        (busybox,) = [i for i in usage["Images"] if "busybox:latest" in i["RepoTags"]]
        assert busybox["Containers"] >= 1
        (entry,) = [c for c in usage["Containers"] if c["Id"] == container.id]
        assert entry["SizeRw"] > 0
        assert isinstance(usage["Volumes"], list)
        table = daemon.docker("system", "df")
        assert table.returncode == 0, table.stderr
        assert table.stdout.decode().splitlines()[0].split() == [
            "TYPE",
            "TOTAL",
            "ACTIVE",
            "SIZE",
            "RECLAIMABLE",
        ]
        verbose = daemon.docker("system", "df", "-v")
        assert verbose.returncode == 0 and b"busybox" in verbose.stdout
    finally:
        container.remove(force=True)
