"""Restart policies through the docker CLI: always, unless-stopped, on-failure[:N], what
`docker stop` and `docker kill` do to them, and the daemon's own restart."""

from __future__ import annotations

import time

import docker
import pytest


def _inspect(daemon, name: str, template: str) -> str:
    result = daemon.docker("inspect", "-f", template, name)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def _wait_for(daemon, name: str, template: str, wanted, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        value = _inspect(daemon, name, template)
        if value == wanted or (callable(wanted) and wanted(value)):
            return value
        assert time.monotonic() < deadline, (name, template, value)
        time.sleep(0.05)


@pytest.fixture
def names(daemon):
    created: list[str] = []
    yield created
    for name in created:
        daemon.docker("rm", "-f", name)


def test_on_failure_stops_after_the_maximum(daemon, names):
    names.append("rp-fail")
    run = daemon.docker(
        "run",
        "-d",
        "--name",
        "rp-fail",
        "--restart",
        "on-failure:3",
        "busybox",
        "sh",
        "-c",
        "exit 4",
    )
    assert run.returncode == 0, run.stderr
    _wait_for(daemon, "rp-fail", "{{.State.Status}} {{.RestartCount}}", "exited 3")
    time.sleep(1.2)  # the next backoff would be 0.8 s: no fourth restart comes
    assert _inspect(daemon, "rp-fail", "{{.RestartCount}} {{.State.ExitCode}}") == "3 4"
    assert _inspect(daemon, "rp-fail", "{{.HostConfig.RestartPolicy.Name}}") == "on-failure"
    # A manual start begins again from zero.
    assert daemon.docker("start", "rp-fail").returncode == 0
    _wait_for(daemon, "rp-fail", "{{.State.Status}} {{.RestartCount}}", "exited 3")


def test_on_failure_leaves_a_clean_exit_alone(daemon, names):
    names.append("rp-ok")
    assert (
        daemon.docker(
            "run", "-d", "--name", "rp-ok", "--restart", "on-failure", "busybox", "true"
        ).returncode
        == 0
    )
    _wait_for(daemon, "rp-ok", "{{.State.Status}}", "exited")
    time.sleep(0.3)
    assert _inspect(daemon, "rp-ok", "{{.State.Status}} {{.RestartCount}}") == "exited 0"


def test_always_restarts_after_exit_and_kill_but_not_after_stop(daemon, names):
    names.append("rp-always")
    assert (
        daemon.docker(
            "run", "-d", "--name", "rp-always", "--restart", "always", "busybox", "sleep", "60"
        ).returncode
        == 0
    )
    first_pid = _inspect(daemon, "rp-always", "{{.State.Pid}}")
    assert daemon.docker("kill", "rp-always").returncode == 0
    _wait_for(daemon, "rp-always", "{{.RestartCount}}", "1")
    _wait_for(daemon, "rp-always", "{{.State.Status}}", "running")
    assert _inspect(daemon, "rp-always", "{{.State.Pid}}") != first_pid
    assert daemon.docker("stop", "-t", "0", "rp-always").returncode == 0
    time.sleep(0.5)
    assert _inspect(daemon, "rp-always", "{{.State.Status}} {{.RestartCount}}") == "exited 1"
    # A container that exits on its own restarts, and `docker ps` says it is restarting.
    assert daemon.docker("start", "rp-always").returncode == 0
    names.append("rp-loop")
    assert (
        daemon.docker(
            "run", "-d", "--name", "rp-loop", "--restart", "always", "busybox", "sh", "-c", "exit 2"
        ).returncode
        == 0
    )
    _wait_for(daemon, "rp-loop", "{{.RestartCount}}", lambda v: int(v) >= 3)
    assert daemon.docker("stop", "rp-loop").returncode == 0
    time.sleep(0.5)
    assert _inspect(daemon, "rp-loop", "{{.State.Status}} {{.State.Restarting}}") == (
        "exited false"
    )


def test_invalid_policies_are_refused(daemon):
    client = daemon.client()
    cases = [
        ({"RestartPolicy": {"Name": "sometimes"}}, "invalid restart policy 'sometimes'"),
        (
            {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}},
            "maximum retry count cannot be used with restart policy 'always'",
        ),
        (
            {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}},
            "maximum retry count cannot be negative",
        ),
        (
            {"AutoRemove": True, "RestartPolicy": {"Name": "always"}},
            "can't create 'AutoRemove' container with restart policy",
        ),
    ]
    for host_config, message in cases:
        with pytest.raises(docker.errors.APIError) as error:
            client.api.create_container("busybox", "true", host_config=host_config)
        assert error.value.status_code == 400
        assert error.value.explanation == message
    assert daemon.ping()


def test_daemon_restart_applies_policies(fresh_daemon):
    d = fresh_daemon
    for name, policy in (
        ("always-run", "always"),
        ("always-stopped", "always"),
        ("unless-run", "unless-stopped"),
        ("unless-stopped", "unless-stopped"),
        ("no-policy", "no"),
    ):
        run = d.docker(
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            "--stop-timeout",
            "1",
            "busybox",
            "sleep",
            "60",
        )
        assert run.returncode == 0, run.stderr
    assert d.docker("stop", "-t", "0", "always-stopped", "unless-stopped").returncode == 0
    d.stop()  # graceful, without --live-restore: the daemon stops its containers
    assert not list(d.data_root.glob("containers/*/rootfs/bin"))  # rootfs unmounted
    d.start()
    status = {
        name: _inspect(d, name, "{{.State.Status}}")
        for name in ("always-run", "always-stopped", "unless-run", "unless-stopped", "no-policy")
    }
    assert status == {
        "always-run": "running",
        "always-stopped": "running",  # Docker: "always" comes back when the daemon does
        "unless-run": "running",
        "unless-stopped": "exited",
        "no-policy": "exited",
    }
    assert _inspect(d, "always-run", "{{.HostConfig.RestartPolicy.Name}}") == "always"
    assert d.docker("stop", "-t", "0", "always-run").returncode == 0
