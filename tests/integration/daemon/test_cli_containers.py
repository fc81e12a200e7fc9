"""The dockyard CLI against a real daemon, side by side with the docker CLI: run, ps, logs,
exec, inspect, rm, exit codes and --format."""

from __future__ import annotations

import json
import uuid

import pytest


def out(result) -> str:
    return result.stdout.decode()


def err(result) -> str:
    return result.stderr.decode()


def name() -> str:
    return "cli" + uuid.uuid4().hex[:8]


@pytest.fixture
def running(daemon):
    container = name()
    daemon.dockyard(
        "run", "-d", "--name", container, "-l", "k=v", "busybox", "sleep", "300", check=True
    )
    try:
        yield container
    finally:
        daemon.docker("rm", "-f", container)


def test_run_output_and_exit_codes_match_docker(daemon) -> None:
    for cli in (daemon.dockyard, daemon.docker):
        result = cli("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
        assert (result.returncode, out(result), err(result)) == (3, "out\n", "err\n")
        result = cli("run", "--rm", "busybox", "echo", "hi")
        assert (result.returncode, out(result)) == (0, "hi\n")
        result = cli("run", "--rm", "-i", "busybox", "cat", input=b"from stdin\n")
        assert (result.returncode, out(result)) == (0, "from stdin\n")


def test_not_found_and_daemon_errors(daemon) -> None:
    mine = daemon.dockyard("run", "--rm", "busybox", "no-such-program")
    theirs = daemon.docker("run", "--rm", "busybox", "no-such-program")
    assert mine.returncode == theirs.returncode == 127
    assert "executable file not found" in err(mine)
    assert err(mine).replace("dockyard", "docker") == err(theirs)
    mine = daemon.dockyard("run", "--rm", "--restart", "sometimes", "busybox", "true")
    assert mine.returncode == 125
    mine = daemon.dockyard("run", "--no-such-flag", "busybox")
    theirs = daemon.docker("run", "--no-such-flag", "busybox")
    assert mine.returncode == theirs.returncode == 125
    assert "unknown flag: --no-such-flag" in err(mine)
    mine, theirs = daemon.dockyard("rm", "no-such-ctr"), daemon.docker("rm", "no-such-ctr")
    assert mine.returncode == theirs.returncode == 1
    assert err(mine) == err(theirs)
    mine, theirs = daemon.dockyard("stop", "no-such-ctr"), daemon.docker("stop", "no-such-ctr")
    assert (mine.returncode, err(mine)) == (theirs.returncode, err(theirs))


def test_ps_matches_docker(daemon, running) -> None:
    stable = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Ports}}\t{{.Names}}"
    for args in (
        ["ps"],
        ["ps", "-a"],
        ["ps", "-q"],
        ["ps", "--no-trunc", "-q"],
        ["ps", "--format", stable],
        ["ps", "--format", '{{.Names}} {{.Label "k"}}'],
        ["ps", "--filter", f"name={running}", "--format", "{{.ID}}"],
    ):
        mine, theirs = daemon.dockyard(*args), daemon.docker(*args)
        assert mine.returncode == theirs.returncode == 0, err(mine)
        if args in (["ps"], ["ps", "-a"]):
            # CREATED and STATUS may tick between the two calls (and the column widths follow
            # the widest value): compare the column names and the ids
            assert out(mine).splitlines()[0].split() == out(theirs).splitlines()[0].split()
            assert [line[:12] for line in out(mine).splitlines()] == [
                line[:12] for line in out(theirs).splitlines()
            ]
        else:
            assert out(mine) == out(theirs), args
    listed = [
        json.loads(line) for line in out(daemon.dockyard("ps", "--format", "json")).splitlines()
    ]
    mine_row = next(row for row in listed if row["Names"] == running)
    assert mine_row["State"] == "running" and mine_row["Command"] == '"sleep 300"'


def test_logs_exec_and_inspect(daemon, running) -> None:
    container = name()
    daemon.dockyard(
        "run", "--name", container, "busybox", "sh", "-c", "echo a; echo b >&2; echo c", check=True
    )
    try:
        for args in (["logs", container], ["logs", "--tail", "1", container]):
            mine, theirs = daemon.dockyard(*args), daemon.docker(*args)
            assert (out(mine), err(mine)) == (out(theirs), err(theirs))
        stamped = out(daemon.dockyard("logs", "-t", container)).splitlines()
        assert len(stamped) == 2 and stamped[0].endswith("Z a")
        fmt = "{{.State.Status}} {{.State.ExitCode}} {{json .Config.Cmd}}"
        fmt += ' {{index .Config.Labels "k"}}'
        for target in (container, running):
            mine = daemon.dockyard("inspect", "--format", fmt, target)
            assert out(mine) == out(daemon.docker("inspect", "--format", fmt, target))
        assert json.loads(out(daemon.dockyard("inspect", running))) == json.loads(
            out(daemon.docker("inspect", running))
        )
        mine, theirs = daemon.dockyard("inspect", "nope"), daemon.docker("inspect", "nope")
        assert (mine.returncode, out(mine), err(mine)) == (
            1,
            "[]\n",
            "Error: No such object: nope\n",
        )
        assert (theirs.returncode, out(theirs), err(theirs)) == (1, "[]\n", err(mine))
    finally:
        daemon.docker("rm", "-f", container)
    result = daemon.dockyard(
        "exec", "-e", "X=1", "-w", "/tmp", running, "sh", "-c", "echo $X $(pwd) $(id -u); exit 4"
    )
    assert (result.returncode, out(result)) == (4, "1 /tmp 0\n")
    result = daemon.dockyard("exec", "-i", running, "cat", input=b"piped\n")
    assert (result.returncode, out(result)) == (0, "piped\n")
    assert daemon.dockyard("exec", "-u", "65534", running, "id", "-u").stdout == b"65534\n"


def test_lifecycle_commands(daemon) -> None:
    container = name()
    created = daemon.dockyard(
        "create", "--name", container, "busybox", "sh", "-c", "echo hello; exit 2"
    )
    assert created.returncode == 0 and len(out(created).strip()) == 64
    try:
        started = daemon.dockyard("start", "-a", container)
        assert (started.returncode, out(started)) == (2, "hello\n")
        assert out(daemon.dockyard("wait", container)) == "2\n"
        daemon.dockyard("rename", container, container + "x", check=True)
        container += "x"
        removed = daemon.dockyard("rm", container)
        assert (removed.returncode, out(removed)) == (0, container + "\n")
    finally:
        daemon.docker("rm", "-f", container)
    container = name()
    daemon.dockyard("run", "-d", "--name", container, "busybox", "sleep", "300", check=True)
    try:
        assert out(daemon.dockyard("kill", "-s", "KILL", container)) == container + "\n"
        status = out(
            daemon.dockyard("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container)
        )
        assert status == "exited 137\n"
        mine, theirs = daemon.dockyard("kill", container), daemon.docker("kill", container)
        assert (mine.returncode, err(mine)) == (theirs.returncode, err(theirs))
        assert daemon.dockyard("rm", "-f", container).returncode == 0
    finally:
        daemon.docker("rm", "-f", container)


def test_cp_stats_commit_export(daemon, running, tmp_path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("copied\n")
    assert daemon.dockyard("cp", str(source), f"{running}:/tmp/x").returncode == 0
    assert out(daemon.dockyard("exec", running, "cat", "/tmp/x")) == "copied\n"
    assert daemon.dockyard("cp", f"{running}:/tmp/x", str(tmp_path / "back")).returncode == 0
    assert (tmp_path / "back").read_text() == "copied\n"
    stats = daemon.dockyard("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", running)
    assert out(stats) == f"{running} 1\n"
    tag = "cli" + uuid.uuid4().hex[:6]
    committed = daemon.dockyard("commit", "-c", "ENV C=1", running, f"{tag}:1")
    try:
        assert out(committed).startswith("sha256:")
        env = daemon.dockyard("image", "inspect", "-f", "{{json .Config.Env}}", f"{tag}:1")
        assert '"C=1"' in out(env)
    finally:
        daemon.docker("rmi", f"{tag}:1")
    exported = daemon.dockyard("export", "-o", str(tmp_path / "fs.tar"), running)
    assert exported.returncode == 0 and (tmp_path / "fs.tar").stat().st_size > 100_000
