"""The daemon killed with SIGKILL while containers run, then started again: the containers
kept running, and logs, attach, stop work on them; exits that happened meanwhile are recorded
with their code and time, and restart policies and --rm are applied to them."""

from __future__ import annotations

import json
import time

from dockyard.engine.timefmt import parse_rfc3339


def _inspect(daemon, name: str, template: str) -> str:
    result = daemon.docker("inspect", "-f", template, name)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def _run(daemon, *args: str) -> None:
    result = daemon.docker("run", "-d", *args)
    assert result.returncode == 0, result.stderr


def test_containers_survive_a_killed_daemon(fresh_daemon):
    d = fresh_daemon
    _run(d, "-i", "--name", "reader", "busybox", "sh", "-c", "echo ready; read l; echo got $l")
    _run(d, "--name", "ticker", "busybox", "sh", "-c", "while true; do echo tick; sleep 0.1; done")
    _run(d, "--name", "quits", "busybox", "sh", "-c", "sleep 1; exit 7")
    _run(d, "--rm", "--name", "gone", "busybox", "sleep", "1")
    _run(
        d,
        "--name",
        "retried",
        "--restart",
        "on-failure:1",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 3",
    )
    pid = _inspect(d, "reader", "{{.State.Pid}}")
    d.kill9()
    time.sleep(1.5)  # "quits", "gone" and "retried" exit while no daemon runs
    killed_at = time.time()
    d.start()
    assert _inspect(d, "reader", "{{.State.Status}} {{.State.Pid}}") == f"running {pid}"
    assert _inspect(d, "ticker", "{{.State.Status}}") == "running"
    assert _inspect(d, "quits", "{{.State.Status}} {{.State.ExitCode}}") == "exited 7"
    finished = _inspect(d, "quits", "{{.State.FinishedAt}}")
    assert killed_at - 3 < parse_rfc3339(finished) <= killed_at
    assert d.docker("inspect", "gone").returncode == 1
    deadline = time.monotonic() + 10
    while _inspect(d, "retried", "{{.RestartCount}}") != "1":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # The reconnected streams: logs, attach with stdin, then a clean exit seen by wait.
    before = d.docker("logs", "ticker").stdout.count(b"tick")
    time.sleep(0.5)
    assert d.docker("logs", "ticker").stdout.count(b"tick") > before
    attached = d.docker("attach", "reader", input=b"hello\n", timeout=20)
    assert attached.stdout == b"got hello\n", attached.stderr
    assert _inspect(d, "reader", "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
    assert d.docker("logs", "reader").stdout == b"ready\ngot hello\n"
    stop = d.docker("stop", "-t", "1", "ticker")
    assert stop.returncode == 0, stop.stderr
    assert _inspect(d, "ticker", "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    assert d.docker("rm", "-f", "reader", "ticker", "quits", "retried").returncode == 0
    assert not list(d.data_root.glob("containers/*"))


def test_live_restore_leaves_containers_running_at_shutdown(fresh_daemon):
    d = fresh_daemon
    d.stop()
    d.extra_args = ["--live-restore"]
    d.start()
    _run(
        d,
        "--name",
        "stays",
        "--health-cmd",
        "true",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "60",
    )
    pid = _inspect(d, "stays", "{{.State.Pid}}")
    d.stop()  # graceful, with --live-restore
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().startswith(b"sleep")
    d.start()
    assert _inspect(d, "stays", "{{.State.Status}} {{.State.Pid}}") == f"running {pid}"
    restarted = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    deadline = time.monotonic() + 10
    # The probes resume: a log entry newer than the restart, and the container healthy.
    while json.loads(_inspect(d, "stays", "{{json .State.Health.Log}}"))[-1]["Start"] < restarted:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert _inspect(d, "stays", "{{.State.Health.Status}}") == "healthy"
    assert d.docker("rm", "-f", "stays").returncode == 0
