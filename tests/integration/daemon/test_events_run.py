"""`docker events` with --since/--until/--filter: a `docker run --rm` in Docker's order."""

from __future__ import annotations

import time


def test_events_of_a_removed_run_in_order(daemon):
    since = time.time()
    result = daemon.docker("run", "--rm", "--name", "evented", "busybox", "sh", "-c", "exit 3")
    assert result.returncode == 3
    time.sleep(0.2)
    until = time.time()
    events = daemon.docker(
        "events",
        "--since",
        f"{since:.3f}",
        "--until",
        f"{until:.3f}",
        "--filter",
        "container=evented",
        "--filter",
        "type=container",
        "--format",
        '{{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes "exitCode"}}',
    )
    assert events.returncode == 0, events.stderr
    assert events.stdout.decode().splitlines() == [
        "create evented ",
        "attach evented ",
        "start evented ",
        "die evented 3",
        "destroy evented ",
    ]
    # Events after --until and of other containers are left out.
    daemon.docker("run", "--rm", "--name", "other", "busybox", "true")
    again = daemon.docker(
        "events",
        "--since",
        f"{since:.3f}",
        "--until",
        f"{until:.3f}",
        "--filter",
        "event=die",
        "--format",
        "{{.Actor.Attributes.name}}",
    )
    assert again.stdout == b"evented\n"
