"""Healthchecks through the docker CLI and docker-py: probes run inside the container, the
status, streak and log in inspect, health_status events, `docker ps` text."""

from __future__ import annotations

import json
import time

import docker
import pytest

MS = 1_000_000


def _health(daemon, name: str) -> dict:
    out = daemon.docker("inspect", "-f", "{{json .State.Health}}", name)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _wait_health(daemon, name: str, status: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        health = _health(daemon, name)
        if health and health["Status"] == status:
            return health
        assert time.monotonic() < deadline, health
        time.sleep(0.1)


@pytest.fixture
def names(daemon):
    created: list[str] = []
    yield created
    for name in created:
        daemon.docker("rm", "-f", name)


def test_healthy_probe_runs_inside_the_container(daemon, names):
    names.append("hc-ok")
    since = str(time.time() - 1)
    run = daemon.docker(
        "run",
        "-d",
        "--name",
        "hc-ok",
        "--health-cmd",
        "cat /etc/hostname && echo probed",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "60",
    )
    assert run.returncode == 0, run.stderr
    assert _health(daemon, "hc-ok")["Status"] == "starting"
    assert b"(health: starting)" in daemon.docker("ps").stdout
    health = _wait_health(daemon, "hc-ok", "healthy")
    entry = health["Log"][-1]
    container_id = daemon.docker("inspect", "-f", "{{.Id}}", "hc-ok").stdout.strip().decode()
    assert entry["ExitCode"] == 0
    assert entry["Output"] == f"{container_id[:12]}\nprobed\n"  # the container's hostname
    assert entry["Start"] <= entry["End"]
    assert health["FailingStreak"] == 0
    assert b"(healthy)" in daemon.docker("ps").stdout
    deadline = time.monotonic() + 10
    while len(_health(daemon, "hc-ok")["Log"]) < 5:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    first = _health(daemon, "hc-ok")["Log"][0]
    deadline = time.monotonic() + 10
    while _health(daemon, "hc-ok")["Log"][0] == first:  # the oldest entry goes...
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert len(_health(daemon, "hc-ok")["Log"]) == 5  # ...and only the last five are kept
    events = daemon.docker(
        "events",
        "--since",
        since,
        "--until",
        str(time.time()),
        "--filter",
        "container=hc-ok",
        "--format",
        "{{.Action}}",
    )
    actions = events.stdout.decode().splitlines()
    assert actions.count("health_status: healthy") == 1, actions
    assert actions.index("start") < actions.index("health_status: healthy")
    # The probes stop with the container; Docker 20.10 then reports "unhealthy".
    assert daemon.docker("stop", "-t", "0", "hc-ok").returncode == 0
    stopped = _health(daemon, "hc-ok")
    assert stopped["Status"] == "unhealthy"
    count = len(stopped["Log"])
    time.sleep(0.6)
    assert _health(daemon, "hc-ok")["Log"][-1] == stopped["Log"][count - 1]


def test_failing_probe_turns_unhealthy_after_retries(daemon, names):
    names.append("hc-bad")
    client = daemon.client()
    container = client.containers.run(
        "busybox",
        ["sleep", "60"],
        name="hc-bad",
        detach=True,
        healthcheck={
            "Test": ["CMD", "sh", "-c", "echo failing; exit 3"],
            "Interval": 200 * MS,
            "Retries": 2,
        },
    )
    health = _wait_health(daemon, "hc-bad", "unhealthy")
    assert health["FailingStreak"] >= 2
    assert health["Log"][-1]["ExitCode"] == 3
    assert health["Log"][-1]["Output"] == "failing\n"
    container.reload()
    assert container.attrs["State"]["Health"]["Status"] == "unhealthy"
    assert b"(unhealthy)" in daemon.docker("ps").stdout


def test_timeout_and_start_period(daemon, names):
    names.append("hc-slow")
    run = daemon.docker(
        "run",
        "-d",
        "--name",
        "hc-slow",
        "--health-cmd",
        "sleep 5",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "--health-start-period",
        "1s",
        "busybox",
        "sleep",
        "60",
    )
    assert run.returncode == 0, run.stderr
    time.sleep(0.9)
    early = _health(daemon, "hc-slow")
    # Failures within the start period do not count.
    assert early["Status"] == "starting" and early["FailingStreak"] == 0
    assert early["Log"][0]["Output"] == "Health check exceeded timeout (300ms)"
    assert early["Log"][0]["ExitCode"] == -1
    _wait_health(daemon, "hc-slow", "unhealthy")


def test_image_healthcheck_can_be_disabled_and_is_validated(daemon, names):
    names.append("hc-none")
    run = daemon.docker(
        "run", "-d", "--name", "hc-none", "--no-healthcheck", "busybox", "sleep", "9"
    )
    assert run.returncode == 0, run.stderr
    assert _health(daemon, "hc-none") is None
    assert b"(health" not in daemon.docker("ps", "-f", "name=hc-none").stdout
    client = daemon.client()
    with pytest.raises(docker.errors.APIError) as error:
        client.api.create_container(
            "busybox", "true", healthcheck={"Test": ["CMD", "true"], "Interval": 5}
        )
    assert error.value.status_code == 400
    assert error.value.explanation == "Interval in Healthcheck cannot be less than 1ms"
    with pytest.raises(docker.errors.APIError) as error:
        client.api.create_container("busybox", "true", healthcheck={"Test": ["CMD"], "Retries": -1})
    assert error.value.explanation == "Retries in Healthcheck cannot be negative"
    assert daemon.ping()


def test_no_probes_while_paused(daemon, names):
    names.append("hc-paused")
    run = daemon.docker(
        "run",
        "-d",
        "--name",
        "hc-paused",
        "--health-cmd",
        "true",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "60",
    )
    assert run.returncode == 0, run.stderr
    _wait_health(daemon, "hc-paused", "healthy")
    assert daemon.docker("pause", "hc-paused").returncode == 0
    time.sleep(0.3)  # a probe under way when the pause came may still finish
    before = _health(daemon, "hc-paused")
    time.sleep(1)
    during = _health(daemon, "hc-paused")
    assert during["Status"] == "healthy" and during["FailingStreak"] == 0
    assert [e["Start"] for e in during["Log"]] == [e["Start"] for e in before["Log"]]
    assert daemon.docker("unpause", "hc-paused").returncode == 0
    deadline = time.monotonic() + 5
    while _health(daemon, "hc-paused")["Log"][-1]["Start"] == during["Log"][-1]["Start"]:
        assert time.monotonic() < deadline, "probing did not resume after unpause"
        time.sleep(0.1)
