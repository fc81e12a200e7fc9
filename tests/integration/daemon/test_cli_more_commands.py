"""More dockyard CLI commands against a real daemon, next to the docker CLI on the same daemon:
stop/restart/pause/unpause, top, diff, update, attach, the prune commands, import, bootstrap,
events, system info, the `container` group, exit codes, TTY sessions in a real pty and the
DOCKYARD_HOST / DOCKER_HOST / -H precedence."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import tarfile
import termios
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import DOCKYARD, Daemon

# PID 1 ignores SIGTERM without a handler: this one stops at once on `stop`
TRAPPING = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
FULL_ID = re.compile(r"(sha256:)?[0-9a-f]{64}")
EVENT_LINE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) [a-z]+ [a-z_:]+[^\n]* ?"
)


def out(result: subprocess.CompletedProcess) -> str:
    return result.stdout.decode()


def err(result: subprocess.CompletedProcess) -> str:
    return result.stderr.decode()


def name() -> str:
    return "more" + uuid.uuid4().hex[:8]


def masked(text: str) -> str:
    """Output with the full IDs (which differ between two setups) replaced."""
    return FULL_ID.sub("<id>", text)


def inspect(daemon: Daemon, ref: str, fmt: str) -> str:
    result = daemon.docker("inspect", "-f", fmt, ref)
    assert result.returncode == 0, err(result)
    return out(result).strip()


@pytest.fixture
def running(daemon: Daemon) -> Iterator[str]:
    container = name()
    daemon.docker("run", "-d", "--name", container, "busybox", "sleep", "300", check=True)
    try:
        yield container
    finally:
        daemon.docker("rm", "-f", container)


@pytest.fixture
def rootfs_tar(tmp_path: Path) -> Path:
    """A tiny root file system: just /hello."""
    path = tmp_path / "rootfs.tar"
    data = b"hello from import\n"
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("hello")
        info.size, info.mode, info.mtime = len(data), 0o755, 1_700_000_000
        archive.addfile(info, io.BytesIO(data))
    return path


# -- 1. stop, restart, pause, unpause, top, diff, update, container prune ---------------------


def test_stop_restart_pause_unpause(daemon: Daemon) -> None:
    container = name()
    daemon.dockyard("run", "-d", "--name", container, "busybox", *TRAPPING, check=True)
    try:
        full_id = inspect(daemon, container, "{{.Id}}")
        stopped = daemon.dockyard("stop", container)
        assert (stopped.returncode, out(stopped)) == (0, container + "\n"), err(stopped)
        assert inspect(daemon, container, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
        first_start = inspect(daemon, container, "{{.State.StartedAt}}")
        # Docker echoes each argument as given, a short ID included
        restarted = daemon.dockyard("restart", "-t", "5", full_id[:12])
        assert (restarted.returncode, out(restarted)) == (0, full_id[:12] + "\n"), err(restarted)
        state = inspect(daemon, container, "{{.State.Status}} {{.State.StartedAt}}")
        assert state.split()[0] == "running" and state.split()[1] != first_start
        second_start = state.split()[1]
        assert daemon.dockyard("restart", container).returncode == 0  # a running one too
        assert inspect(daemon, container, "{{.State.StartedAt}}") != second_start

        paused = daemon.dockyard("pause", container)
        assert (paused.returncode, out(paused)) == (0, container + "\n"), err(paused)
        assert inspect(daemon, container, "{{.State.Paused}} {{.State.Status}}") == "true paused"
        listed = daemon.dockyard("ps", "--filter", "status=paused", "--format", "{{.Names}}")
        assert out(listed) == container + "\n"
        again = daemon.dockyard("pause", container), daemon.docker("pause", container)
        assert (again[0].returncode, err(again[0])) == (again[1].returncode, err(again[1]))
        unpaused = daemon.dockyard("unpause", container)
        assert (unpaused.returncode, out(unpaused)) == (0, container + "\n"), err(unpaused)
        assert inspect(daemon, container, "{{.State.Paused}} {{.State.Status}}") == "false running"
        again = daemon.dockyard("unpause", container), daemon.docker("unpause", container)
        assert again[0].returncode == again[1].returncode == 1
        assert err(again[0]) == err(again[1])
    finally:
        daemon.docker("rm", "-f", container)


def test_stop_timeout_kills_a_process_ignoring_sigterm(daemon: Daemon, running: str) -> None:
    began = time.monotonic()
    stopped = daemon.dockyard("stop", "-t", "1", running)
    assert (stopped.returncode, out(stopped)) == (0, running + "\n"), err(stopped)
    assert time.monotonic() - began < 8  # not the default 10 s grace
    assert inspect(daemon, running, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"


def test_top_matches_docker(daemon: Daemon, running: str) -> None:
    mine, theirs = daemon.dockyard("top", running), daemon.docker("top", running)
    assert mine.returncode == theirs.returncode == 0, err(mine)
    lines = out(mine).splitlines()
    assert lines[0] == out(theirs).splitlines()[0]
    assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert len(lines) == 2
    fields = lines[1].split(None, 7)
    assert fields[1] == inspect(daemon, running, "{{.State.Pid}}")  # host PIDs, as Docker
    assert fields[7] == "sleep 300"
    # the C (CPU) column may tick between the two calls: compare the rest
    theirs_fields = out(theirs).splitlines()[1].split(None, 7)
    assert fields[:3] + fields[4:] == theirs_fields[:3] + theirs_fields[4:]
    args = ("top", running, "-o", "pid,user,args")
    mine, theirs = daemon.dockyard(*args), daemon.docker(*args)
    assert (mine.returncode, out(mine)) == (0, out(theirs))
    assert out(mine).split()[:3] == ["PID", "USER", "COMMAND"]


def test_diff_matches_docker(daemon: Daemon) -> None:
    container = name()
    script = "mkdir /tmp/d && echo x > /tmp/d/f && rm /bin/vi && echo y >> /etc/passwd"
    daemon.dockyard("run", "--name", container, "busybox", "sh", "-c", script, check=True)
    fresh = name()
    daemon.dockyard("run", "--name", fresh, "busybox", "true", check=True)
    try:
        mine, theirs = daemon.dockyard("diff", container), daemon.docker("diff", container)
        assert (mine.returncode, out(mine)) == (0, out(theirs)), err(mine)
        # What Docker reports: the files dockerd mounts over (/etc/hosts, /etc/hostname,
        # /etc/resolv.conf) live in its init layer and are never a change of the container.
        assert sorted(out(mine).splitlines()) == sorted(
            [
                "C /bin",
                "C /etc",
                "C /etc/passwd",
                "C /tmp",
                "A /tmp/d",
                "A /tmp/d/f",
                "D /bin/vi",
            ]
        )
        untouched = daemon.dockyard("diff", fresh)
        assert (untouched.returncode, out(untouched)) == (0, "")
    finally:
        daemon.docker("rm", "-f", container, fresh)


def _cgroup_memory(daemon: Daemon, container: str) -> tuple[int, int]:
    """(memory limit, memory+swap limit) as the container's cgroup has them."""
    script = (
        "if [ -e /sys/fs/cgroup/memory.max ]; then "
        "echo $(cat /sys/fs/cgroup/memory.max) $(cat /sys/fs/cgroup/memory.swap.max) v2; else "
        "cd /sys/fs/cgroup/memory && "
        "echo $(cat memory.limit_in_bytes) $(cat memory.memsw.limit_in_bytes) v1; fi"
    )
    memory, swap, version = out(daemon.docker("exec", container, "sh", "-c", script)).split()
    if version == "v2":  # memory.swap.max holds the swap alone
        return int(memory), int(memory) + int(swap)
    return int(memory), int(swap)


def test_update_memory(daemon: Daemon, running: str) -> None:
    updated = daemon.dockyard("update", "--memory", "64m", "--memory-swap", "128m", running)
    assert (updated.returncode, out(updated)) == (0, running + "\n"), err(updated)
    assert inspect(daemon, running, "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}") == (
        f"{64 << 20} {128 << 20}"
    )
    assert _cgroup_memory(daemon, running) == (64 << 20, 128 << 20)
    # above the swap limit already set: refused, with Docker's message
    mine = daemon.dockyard("update", "-m", "300m", running)
    theirs = daemon.docker("update", "-m", "300m", running)
    assert (mine.returncode, err(mine)) == (theirs.returncode, err(theirs))
    assert mine.returncode == 1 and "memoryswap" in err(mine)


def _prunable_containers(daemon: Daemon, cli) -> list[str]:
    """A created one and an exited one holding 3000 KiB of changes."""
    created, exited = name(), name()
    cli("create", "--name", created, "busybox", "true", check=True)
    cli(
        "run",
        "--name",
        exited,
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/big",
        "bs=1k",
        "count=3000",
        check=True,
    )
    return [created, exited]


def test_container_prune(daemon: Daemon, running: str) -> None:
    mine_names = _prunable_containers(daemon, daemon.dockyard)
    theirs_names: list[str] = []
    try:
        ids = {inspect(daemon, n, "{{.Id}}") for n in mine_names}
        mine = daemon.dockyard("container", "prune", "-f")
        assert mine.returncode == 0, err(mine)
        text = out(mine)
        head, _, tail = text.partition("\n\n")
        assert head.splitlines()[0] == "Deleted Containers:"
        assert set(head.splitlines()[1:]) == ids
        assert re.fullmatch(r"Total reclaimed space: 3\.07\dMB\n", tail), text
        left = out(daemon.dockyard("container", "ls", "-a", "--format", "{{.Names}}")).split()
        assert left == [running]
        theirs_names = _prunable_containers(daemon, daemon.docker)
        theirs = daemon.docker("container", "prune", "-f")
        assert masked(out(theirs)) == masked(text)
        nothing = daemon.dockyard("container", "prune", "-f")
        assert out(nothing) == out(daemon.docker("container", "prune", "-f"))
        assert out(nothing) == "Total reclaimed space: 0B\n"
    finally:
        daemon.docker("rm", "-f", *mine_names, *theirs_names)


# -- 2. attach --------------------------------------------------------------------------------


COUNTING = "for i in 1 2 3; do echo $i; sleep 0.3; done; exit 3"


def test_attach_prints_the_rest_and_exits_with_the_container_code(daemon: Daemon) -> None:
    # three rounds: the end of the stream and the container's exit race each other
    for cli in (daemon.docker, daemon.dockyard, daemon.dockyard, daemon.dockyard):
        container = name()
        daemon.docker("run", "-d", "--name", container, "busybox", "sh", "-c", COUNTING, check=True)
        try:
            attached = cli("attach", container)
            assert out(attached) in ("1\n2\n3\n", "2\n3\n", "3\n"), out(attached)
            assert attached.returncode == 3, (cli.__name__, out(attached), err(attached))
            late = daemon.dockyard("attach", container), daemon.docker("attach", container)
            assert late[0].returncode == late[1].returncode == 1
            assert err(late[0]) == err(late[1])
            assert "You cannot attach to a stopped container" in err(late[0])
        finally:
            daemon.docker("rm", "-f", container)


# -- 3. import, prunes, bootstrap -------------------------------------------------------------


def test_import_and_image_import(daemon: Daemon, rootfs_tar: Path) -> None:
    tag = name()
    images: list[str] = []
    container = name()
    try:
        imported = daemon.dockyard("import", str(rootfs_tar), f"{tag}:v1")
        assert imported.returncode == 0, err(imported)
        assert FULL_ID.fullmatch(out(imported).strip()) and out(imported).startswith("sha256:")
        images.append(f"{tag}:v1")
        assert inspect(daemon, f"{tag}:v1", "{{.Id}}") == out(imported).strip()
        reference = daemon.docker("import", str(rootfs_tar), f"{tag}:docker")
        images.append(f"{tag}:docker")
        assert reference.returncode == 0, err(reference)
        fmt = "{{json .RootFS}} {{.Comment}} {{json .Config.Cmd}} {{.Os}}"
        assert inspect(daemon, f"{tag}:v1", fmt) == inspect(daemon, f"{tag}:docker", fmt)

        # the file is in the image: copy it out of a container made from it
        daemon.docker("create", "--name", container, f"{tag}:v1", "/hello", check=True)
        copied = daemon.dockyard("cp", f"{container}:/hello", "-")
        with tarfile.open(fileobj=io.BytesIO(copied.stdout)) as archive:
            member = archive.getmember("hello")
            assert archive.extractfile(member).read() == b"hello from import\n"

        # image import, from stdin, with a change and a message
        args = ("-c", 'CMD ["/hello"]', "-m", "from the test", "-", f"{tag}:stdin")
        piped = daemon.dockyard("image", "import", *args, input=rootfs_tar.read_bytes())
        assert piped.returncode == 0, err(piped)
        images.append(f"{tag}:stdin")
        theirs = daemon.docker(
            "image", "import", *args[:-1], f"{tag}:dstdin", input=rootfs_tar.read_bytes()
        )
        images.append(f"{tag}:dstdin")
        assert theirs.returncode == 0, err(theirs)
        assert inspect(daemon, f"{tag}:stdin", fmt) == inspect(daemon, f"{tag}:dstdin", fmt)
        assert inspect(daemon, f"{tag}:stdin", "{{.Comment}} {{json .Config.Cmd}}") == (
            'from the test ["/hello"]'
        )
        # no name: a dangling image, listed as <none>
        anonymous = daemon.dockyard("image", "import", str(rootfs_tar))
        images.append(out(anonymous).strip())
        listed = daemon.dockyard("images", "-a", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
        assert f"<none>:<none> {out(anonymous).strip()[7:19]}" in out(listed).splitlines()
    finally:
        daemon.docker("rm", "-f", container)
        daemon.docker("rmi", "-f", *images)


def _dangling(cli, rootfs_tar: Path, count: int) -> list[str]:
    made = []
    for i in range(count):
        result = cli("import", "-c", f"ENV N={uuid.uuid4().hex}{i}", str(rootfs_tar), check=True)
        made.append(out(result).strip())
    return made


def test_image_prune_output_matches_docker(daemon: Daemon, rootfs_tar: Path) -> None:
    tag = name()
    daemon.dockyard("import", str(rootfs_tar), f"{tag}:kept", check=True)
    made = _dangling(daemon.dockyard, rootfs_tar, 2)
    try:
        mine = daemon.dockyard("image", "prune", "-f")
        assert mine.returncode == 0, err(mine)
        theirs_made = _dangling(daemon.docker, rootfs_tar, 2)
        made += theirs_made
        theirs = daemon.docker("image", "prune", "-f")
        # Docker: "Deleted Images:", one "deleted: sha256:..." per image, blank, total
        assert sorted(out(theirs).splitlines()[1:3]) == sorted(f"deleted: {i}" for i in theirs_made)
        assert masked(out(mine)) == masked(out(theirs))
        for image in made:
            assert daemon.docker("image", "inspect", image).returncode == 1
        assert daemon.docker("image", "inspect", f"{tag}:kept").returncode == 0
        assert daemon.docker("image", "inspect", "busybox:latest").returncode == 0
    finally:
        daemon.docker("rmi", "-f", f"{tag}:kept", *made)


def _unused_anonymous_volume(cli) -> str:
    container = name()
    cli("run", "--name", container, "-v", "/anon", "busybox", "sh", "-c", "echo hi > /anon/f")
    volume = json.loads(out(cli("inspect", "-f", "{{json .Mounts}}", container)))[0]["Name"]
    cli("rm", container, check=True)
    return volume


def test_volume_prune(daemon: Daemon) -> None:
    user = name()
    volumes = [name()]
    daemon.dockyard("create", "--name", user, "-v", f"{volumes[0]}:/k", "busybox", check=True)
    try:
        volumes.append(_unused_anonymous_volume(daemon.dockyard))
        mine = daemon.dockyard("volume", "prune", "-f")
        assert (mine.returncode, out(mine)) == (
            0,
            f"Deleted Volumes:\n{volumes[1]}\n\nTotal reclaimed space: 3B\n",
        ), err(mine)
        assert daemon.docker("volume", "inspect", volumes[1]).returncode == 1
        assert daemon.docker("volume", "inspect", volumes[0]).returncode == 0  # in use
        volumes.append(_unused_anonymous_volume(daemon.docker))
        theirs = daemon.docker("volume", "prune", "-f")
        assert masked(out(theirs)) == masked(out(mine))
        assert out(daemon.dockyard("volume", "prune", "-f")) == "Total reclaimed space: 0B\n"
    finally:
        daemon.docker("rm", "-f", user)
        daemon.docker("volume", "rm", "-f", *volumes)


def _system_prune_setup(daemon: Daemon, cli, rootfs_tar: Path) -> tuple[str, str, str]:
    container, network = name(), name()
    cli("create", "--name", container, "busybox", "true", check=True)
    cli("network", "create", network, check=True)
    (image,) = _dangling(cli, rootfs_tar, 1)
    return container, network, image


@pytest.mark.parametrize("cli", ["dockyard", "docker"])
def test_system_prune(daemon: Daemon, running: str, rootfs_tar: Path, cli: str) -> None:
    """dockyard's system prune; the docker CLI's on the same daemon is the reference (it
    prunes the build cache as well, POST /build/prune)."""
    run = getattr(daemon, cli)
    made = _system_prune_setup(daemon, run, rootfs_tar)
    try:
        container_id = inspect(daemon, made[0], "{{.Id}}")
        pruned = run("system", "prune", "-f")
        assert pruned.returncode == 0, err(pruned)
        # Docker's layout: titled sections, one item per line, a blank line after each, then
        # the total. Other tests of the module may leave more to prune than what was made here.
        sections = dict(re.findall(r"(Deleted \w+):\n((?:.+\n)+)\n", out(pruned)))
        assert container_id in sections["Deleted Containers"].splitlines()
        assert made[1] in sections["Deleted Networks"].splitlines()
        assert f"deleted: {made[2]}" in sections["Deleted Images"].splitlines()
        assert all(
            re.fullmatch(r"(untagged: \S+|deleted: sha256:[0-9a-f]{64})", line)
            for line in sections["Deleted Images"].splitlines()
        )
        assert re.search(r"\n\nTotal reclaimed space: \S+\n\Z", out(pruned))
        assert daemon.docker("container", "inspect", made[0]).returncode == 1
        assert daemon.docker("network", "inspect", made[1]).returncode == 1
        assert daemon.docker("image", "inspect", made[2]).returncode == 1
        assert inspect(daemon, running, "{{.State.Status}}") == "running"
        assert daemon.docker("image", "inspect", "busybox:latest").returncode == 0
    finally:
        daemon.docker("rm", "-f", made[0])
        daemon.docker("network", "rm", made[1])
        daemon.docker("rmi", "-f", made[2])


def test_image_bootstrap_busybox(daemon: Daemon) -> None:
    before = inspect(daemon, "busybox:latest", "{{.Id}}")
    made = daemon.dockyard("image", "bootstrap", "busybox")
    try:
        assert made.returncode == 0, err(made)
        # stdout: the ID of the image now tagged busybox:latest, alone on its line
        assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", out(made)), out(made)
        assert out(made).strip() == inspect(daemon, "busybox:latest", "{{.Id}}")
        quiet = daemon.dockyard("image", "bootstrap", "-q", "busybox")
        assert (quiet.returncode, err(quiet)) == (0, "")
        assert out(quiet).strip() == inspect(daemon, "busybox:latest", "{{.Id}}")
        ran = daemon.dockyard("run", "--rm", "busybox", "echo", "ok")
        assert (ran.returncode, out(ran)) == (0, "ok\n")
        refused = daemon.dockyard("image", "bootstrap", "nosuch")
        assert refused.returncode == 1
        assert "cannot bootstrap 'nosuch'" in err(refused)
    finally:
        # earlier busybox images left untagged by the rebuilds
        for image in {before, out(made).strip()} - {inspect(daemon, "busybox:latest", "{{.Id}}")}:
            daemon.docker("rmi", image)


# -- 4. events --------------------------------------------------------------------------------


def test_events_match_docker(daemon: Daemon) -> None:
    container = name()
    daemon.dockyard("run", "--name", container, "busybox", "true", check=True)
    daemon.dockyard("rm", container, check=True)
    until = str(int(time.time()) + 1)
    mine = daemon.dockyard("events", "--since", "0", "--until", until)
    theirs = daemon.docker("events", "--since", "0", "--until", until)
    assert mine.returncode == theirs.returncode == 0, err(mine)
    assert out(mine) == out(theirs)
    lines = out(mine).splitlines()
    assert lines and all(EVENT_LINE.fullmatch(line) for line in lines), lines[:3]

    args = ("--since", "0", "--until", until, "--filter", f"container={container}")
    args += ("--filter", "type=container")
    mine = daemon.dockyard("system", "events", *args)
    theirs = daemon.docker("system", "events", *args)
    assert (mine.returncode, out(mine)) == (0, out(theirs)), err(mine)
    actions = [line.split()[2] for line in out(mine).splitlines()]
    assert [a for a in actions if a in ("create", "start", "die", "destroy")] == [
        "create",
        "start",
        "die",
        "destroy",
    ]
    die = next(line for line in out(mine).splitlines() if line.split()[2] == "die")
    assert f"exitCode=0, image=busybox, name={container})" in die

    # the local time zone, as the docker CLI prints times
    env = {**daemon.env, "TZ": "Asia/Kolkata"}
    command = ["events", *args]
    mine = subprocess.run([DOCKYARD, *command], env=env, capture_output=True, timeout=60)
    theirs = subprocess.run(["docker", *command], env=env, capture_output=True, timeout=60)
    assert out(mine) == out(theirs) and "+05:30 container create" in out(mine)


# -- 5. system info ---------------------------------------------------------------------------


def _server_section(text: str) -> list[str]:
    return text.split("\nServer:\n", 1)[1].splitlines()


def test_system_info_is_info(daemon: Daemon) -> None:
    system, plain = daemon.dockyard("system", "info"), daemon.dockyard("info")
    assert system.returncode == plain.returncode == 0, err(system)
    assert out(system) == out(plain)
    theirs = daemon.docker("system", "info")
    mine_lines, theirs_lines = _server_section(out(system)), _server_section(out(theirs))
    # dockyard shows a subset of docker's lines, word for word and in docker's order
    positions = [theirs_lines.index(line) for line in mine_lines if line in theirs_lines]
    assert [line for line in mine_lines if line not in theirs_lines] == []
    assert positions == sorted(positions)
    assert f" Docker Root Dir: {daemon.data_root}" in mine_lines
    keys = [line.split(":")[0].strip() for line in mine_lines]
    for key in ("Containers", "Running", "Images", "Server Version", "Storage Driver", "CPUs"):
        assert key in keys
    fmt = "{{.Containers}} {{.Images}} {{.Driver}} {{.ServerVersion}} {{.NCPU}}"
    mine = daemon.dockyard("system", "info", "-f", fmt)
    assert (mine.returncode, out(mine)) == (0, out(daemon.docker("system", "info", "-f", fmt)))


# -- 6. the container group -------------------------------------------------------------------


def test_container_group_forms(daemon: Daemon, running: str) -> None:
    created = name()
    daemon.dockyard("container", "create", "--name", created, "busybox", "true", check=True)
    try:
        for args in (
            ["container", "ls", "-a", "--format", "{{.Names}} {{.State}} {{.Command}}"],
            ["container", "ls", "--format", "{{.Names}}"],
            ["container", "list", "-a", "-q"],
        ):
            mine, theirs = daemon.dockyard(*args), daemon.docker(*args)
            assert (mine.returncode, out(mine)) == (0, out(theirs)), args
        listed = out(daemon.dockyard("container", "ls", "-a")).splitlines()
        reference = out(daemon.docker("container", "ls", "-a")).splitlines()
        assert listed[0].split() == reference[0].split()  # CREATED/STATUS may tick between
        assert [line[:12] for line in listed] == [line[:12] for line in reference]
        assert {line.split()[-1] for line in listed[1:]} == {running, created}

        gone = name()
        ran = daemon.dockyard("container", "run", "--rm", "--name", gone, "busybox", "echo", "hi")
        assert (ran.returncode, out(ran)) == (0, "hi\n")
        assert daemon.docker("container", "inspect", gone).returncode == 1  # removed

        mine = daemon.dockyard("container", "inspect", running)
        assert json.loads(out(mine)) == json.loads(
            out(daemon.docker("container", "inspect", running))
        )
        fmt = "{{.Name}} {{.State.Status}} {{json .Config.Cmd}}"
        mine = daemon.dockyard("container", "inspect", "-f", fmt, running, created)
        assert out(mine) == f'/{running} running ["sleep","300"]\n/{created} created ["true"]\n'
        sized = daemon.dockyard("container", "inspect", "-s", "-f", "{{.SizeRootFs}}", running)
        assert int(out(sized)) > 1_000_000
        for args in (["container", "inspect", "nope"], ["container", "inspect", "busybox"]):
            mine, theirs = daemon.dockyard(*args), daemon.docker(*args)
            assert (mine.returncode, out(mine), err(mine)) == (1, out(theirs), err(theirs))

        mine, theirs = daemon.dockyard("container", "rm", running), daemon.docker("rm", running)
        assert (mine.returncode, err(mine)) == (theirs.returncode, err(theirs)) != (0, "")
        removed = daemon.dockyard("container", "rm", created)
        assert (removed.returncode, out(removed)) == (0, created + "\n")
        forced = daemon.dockyard("container", "remove", "-f", running)
        assert (forced.returncode, out(forced)) == (0, running + "\n")
        assert daemon.dockyard("container", "ls", "-a", "-q").stdout == b""
        mine, theirs = daemon.dockyard("container", "rm", created), daemon.docker("rm", created)
        assert (mine.returncode, err(mine)) == (1, err(theirs))
    finally:
        daemon.docker("rm", "-f", created)


# -- 7. exit codes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (["/etc"], 126),  # a directory: cannot be invoked
        (["nosuchcmd"], 127),
        (["sh", "-c", "exit 7"], 7),
    ],
    ids=["directory-126", "not-found-127", "exit-7"],
)
def test_run_exit_codes(daemon: Daemon, command: list[str], code: int) -> None:
    mine = daemon.dockyard("run", "--rm", "busybox", *command)
    theirs = daemon.docker("run", "--rm", "busybox", *command)
    assert theirs.returncode == code, err(theirs)  # the reference CLI on this daemon
    assert mine.returncode == code, err(mine)
    # the CLI's own name aside, the same message (the daemon's words)
    as_docker = re.sub(r"^dockyard: ", "docker: ", err(mine))
    assert as_docker.replace("'dockyard run --help'", "'docker run --help'") == err(theirs)


def test_exec_of_a_directory_exits_126(daemon: Daemon, running: str) -> None:
    mine = daemon.dockyard("exec", running, "/etc")
    assert mine.returncode == 126, (out(mine), err(mine))
    assert daemon.dockyard("exec", running, "sh", "-c", "exit 9").returncode == 9


# -- 8. TTY sessions in a real terminal -------------------------------------------------------


def _pty_session(
    daemon: Daemon, argv: list[str], type_ahead: bool, timeout: float = 15
) -> tuple[bytes, int | None]:
    """Run argv on a fresh 31x97 pty, send `stty size; exit 4` (at once, or after the
    shell's prompt), read until EOF; (everything read, exit status or None if it hung)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 31, 97, 0, 0))
    process = subprocess.Popen(
        argv,
        env=daemon.env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    command = b"stty size; exit 4\r"
    sent = False
    if type_ahead:
        os.write(master, command)
        sent = True
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sent and b"# " in data:
                os.write(master, command)
                sent = True
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every slave end is closed
                break
            if not chunk:
                break
            data += chunk
        try:
            return data, process.wait(5)
        except subprocess.TimeoutExpired:
            return data, None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        os.close(master)


def test_tty_run_it(daemon: Daemon) -> None:
    container = name()
    argv = [DOCKYARD, "run", "-it", "--rm", "--name", container, "busybox", "sh"]
    try:
        data, code = _pty_session(daemon, argv, type_ahead=False)
        assert b"31 97" in data, data
        assert code == 4, data
    finally:
        daemon.docker("rm", "-f", container)


def test_tty_exec_it(daemon: Daemon, running: str) -> None:
    data, code = _pty_session(daemon, [DOCKYARD, "exec", "-it", running, "sh"], type_ahead=False)
    assert b"31 97" in data, data
    assert code == 4, data
    # the exec'd shell is gone with the session
    assert "sh" not in out(daemon.docker("top", running, "-o", "args")).split()


def test_tty_input_typed_before_the_session_starts_is_kept(daemon: Daemon) -> None:
    """Type-ahead (input queued on the terminal before the CLI switches it to raw mode)
    reaches the container with docker; it must with dockyard too."""
    for cli in ("docker", DOCKYARD):
        container = name()
        argv = [cli, "run", "-it", "--rm", "--name", container, "busybox", "sh"]
        try:
            data, code = _pty_session(daemon, argv, type_ahead=True, timeout=10)
            assert (b"31 97" in data, code) == (True, 4), (cli, data)
        finally:
            daemon.docker("rm", "-f", container)


# -- 9. DOCKYARD_HOST, DOCKER_HOST, -H --------------------------------------------------------


def test_host_precedence(daemon: Daemon, running: str) -> None:
    """configured_host: -H, then DOCKYARD_HOST, then DOCKER_HOST."""
    missing = f"unix://{daemon.root / 'nothing-here.sock'}"
    container_id = inspect(daemon, running, "{{.Id}}")[:12]

    def ps(env_changes: dict[str, str | None], *global_flags: str) -> subprocess.CompletedProcess:
        env = {**daemon.env}
        for key, value in env_changes.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return subprocess.run(
            [DOCKYARD, *global_flags, "ps", "-q"], env=env, capture_output=True, timeout=60
        )

    works = ps({"DOCKER_HOST": missing, "DOCKYARD_HOST": daemon.host})
    assert (works.returncode, out(works)) == (0, container_id + "\n"), err(works)
    # DOCKYARD_HOST wins even when it is the one that does not answer (and nothing autostarts)
    fails = ps({"DOCKER_HOST": daemon.host, "DOCKYARD_HOST": missing})
    assert fails.returncode == 1
    assert err(fails) == (
        f"Cannot connect to the Docker daemon at {missing}. Is the docker daemon running?\n"
    )
    fallback = ps({"DOCKER_HOST": daemon.host, "DOCKYARD_HOST": None})
    assert (fallback.returncode, out(fallback)) == (0, container_id + "\n"), err(fallback)
    for flags in (("-H", daemon.host), (f"--host={daemon.host}",)):
        overridden = ps({"DOCKER_HOST": missing, "DOCKYARD_HOST": missing}, *flags)
        assert (overridden.returncode, out(overridden)) == (0, container_id + "\n"), err(overridden)
    wrong_flag = ps({"DOCKER_HOST": daemon.host, "DOCKYARD_HOST": daemon.host}, "-H", missing)
    assert wrong_flag.returncode == 1 and missing in err(wrong_flag)
