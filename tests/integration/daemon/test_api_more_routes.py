"""More Engine API routes end to end: restart, kill signals, attach (detach keys, logs),
logs follow/since/until, streamed stats, live and filtered events, `ps` and `images` filters.

Driven by the real docker CLI where it can express the behaviour, docker-py or raw HTTP over
the daemon's UNIX socket otherwise. Expected values are what real Docker does.
"""

from __future__ import annotations

import json
import queue
import socket
import struct
import subprocess
import threading
import time
from urllib.parse import quote

# A process that reports SIGUSR1 and exits 5; "ready" once the trap is installed.
USR1_SCRIPT = 'trap "echo got; exit 5" USR1; echo ready; while true; do sleep 0.1; done'
# Exits at once on SIGTERM, so a stop or restart takes no grace period.
TERM_SCRIPT = 'trap "exit 0" TERM; while true; do sleep 0.1; done'


# -- helpers -----------------------------------------------------------------------------------


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def _inspect(daemon, ref: str) -> dict:
    return json.loads(_ok(daemon.docker("inspect", "--type", "container", ref)))[0]


def _request(daemon, method: str, path: str) -> tuple[int, dict | None]:
    """One plain HTTP request over the daemon's socket: (status, JSON body or None)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(str(daemon.socket))
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    try:
        return status, json.loads(body) if body.strip() else None
    except ValueError:
        return status, None


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_text, _, body = body.partition(b"\r\n")
        size = int(size_text, 16)
        if size == 0:
            break
        out, body = out + body[:size], body[size + 2 :]
    return out


def _hijack(daemon, path: str) -> tuple[bytes, socket.socket, bytes]:
    """POST with an upgrade, as the docker CLI attaches: (status line, raw socket, bytes of
    the stream already read past the headers)."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(str(daemon.socket))
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n"
        "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n".encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before the headers: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], sock, rest


def _read_to_eof(sock: socket.socket, data: bytes, timeout: float = 10) -> bytes:
    sock.settimeout(timeout)
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    """Docker's multiplexed stream: 8-byte headers (stream, 0, 0, 0, big-endian length)."""
    out = []
    while data:
        assert len(data) >= 8, f"truncated frame header: {data!r}"
        stream, length = data[0], struct.unpack(">I", data[4:8])[0]
        assert data[1:4] == b"\0\0\0", f"bad frame header: {data[:8]!r}"
        out.append((stream, data[8 : 8 + length]))
        data = data[8 + length :]
    return out


def _wait_for_log(daemon, name: str, text: str, deadline: float = 15) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if text in daemon.docker("logs", name).stdout.decode():
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} never logged {text!r}")


def _events(daemon, since: float, until: float, *filters: str, fmt: str) -> list[str]:
    args = ["events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--format", fmt]
    for item in filters:
        args += ["--filter", item]
    return _ok(daemon.docker(*args)).splitlines()


def _names(daemon, *args: str) -> list[str]:
    return _ok(daemon.docker("ps", *args, "--format", "{{.Names}}")).split()


# -- 1. restart --------------------------------------------------------------------------------


def test_restart_keeps_id_new_start_time_no_restart_count_and_event(daemon):
    container_id = _ok(
        daemon.docker("run", "-d", "--name", "more-restart", "busybox", "sh", "-c", TERM_SCRIPT)
    ).strip()
    try:
        before = _inspect(daemon, "more-restart")
        since = time.time()
        result = daemon.docker("restart", "-t", "5", "more-restart")
        assert _ok(result).strip() == "more-restart"
        after = _inspect(daemon, "more-restart")
        assert after["Id"] == before["Id"] == container_id
        assert after["State"]["Running"] and after["State"]["Status"] == "running"
        assert after["State"]["StartedAt"] > before["State"]["StartedAt"]
        assert after["State"]["Pid"] != before["State"]["Pid"]
        # A manual restart resets the restart manager: RestartCount stays 0.
        assert after["RestartCount"] == 0
        time.sleep(0.1)
        actions = _events(
            daemon,
            since,
            time.time(),
            "container=more-restart",
            fmt="{{.Action}}",
        )
        assert "restart" in actions, actions
        # dockerd stops (die, stop), starts again, then reports the restart.
        assert actions.index("die") < actions.index("start") < actions.index("restart")
        assert actions.count("restart") == 1
    finally:
        daemon.docker("rm", "-f", "more-restart")


# -- 2. kill signals ---------------------------------------------------------------------------


def test_kill_with_a_signal_number_and_a_signal_name_reaches_the_process(daemon):
    names = ["more-kill-num", "more-kill-name"]
    try:
        since = time.time()
        for name, signal in zip(names, ["10", "USR1"], strict=True):
            _ok(daemon.docker("run", "-d", "--name", name, "busybox", "sh", "-c", USR1_SCRIPT))
            _wait_for_log(daemon, name, "ready")
            assert _ok(daemon.docker("kill", "-s", signal, name)).strip() == name
            assert _ok(daemon.docker("wait", name)).strip() == "5"
            logs = daemon.docker("logs", name).stdout.decode().split()
            assert logs == ["ready", "got"]
            state = _inspect(daemon, name)["State"]
            assert state["ExitCode"] == 5 and state["Status"] == "exited"
        time.sleep(0.1)
        # The kill event carries the signal as a number, whichever way it was named.
        kills = _events(
            daemon,
            since,
            time.time(),
            "event=kill",
            fmt="{{.Actor.Attributes.name}} {{.Actor.Attributes.signal}}",
        )
        assert kills == ["more-kill-num 10", "more-kill-name 10"]
    finally:
        daemon.docker("rm", "-f", *names)


def test_kill_with_an_invalid_signal_is_refused(daemon):
    container_id = _ok(
        daemon.docker("run", "-d", "--name", "more-kill-bad", "busybox", "sh", "-c", USR1_SCRIPT)
    ).strip()
    try:
        _wait_for_log(daemon, "more-kill-bad", "ready")
        result = daemon.docker("kill", "-s", "FOO", "more-kill-bad")
        assert result.returncode == 1
        assert b"Invalid signal: FOO" in result.stderr, result.stderr
        status, body = _request(daemon, "POST", f"/v1.41/containers/{container_id}/kill?signal=FOO")
        assert status == 400 and body == {"message": "Invalid signal: FOO"}
        assert _inspect(daemon, "more-kill-bad")["State"]["Running"]
        # The process never saw a signal.
        assert "got" not in daemon.docker("logs", "more-kill-bad").stdout.decode()
    finally:
        daemon.docker("rm", "-f", "more-kill-bad")


# -- 3./4. attach ------------------------------------------------------------------------------


def test_attach_detach_keys_end_the_stream_and_leave_it_running(daemon):
    container_id = _ok(
        daemon.docker("run", "-dit", "--name", "more-detach", "busybox", "sh")
    ).strip()
    sock = None
    try:
        since = time.time()
        status, sock, data = _hijack(
            daemon,
            f"/v1.41/containers/{container_id}/attach?stdin=1&stdout=1&stderr=1&stream=1"
            "&detachKeys=ctrl-x",
        )
        assert status == b"HTTP/1.1 101 UPGRADED"
        # The shell answers through the attach (a tty: raw bytes, no frames).
        sock.sendall(b"echo at''tached\n")
        end = time.monotonic() + 10
        while b"attached" not in data.replace(b"at''tached", b"") and time.monotonic() < end:
            data += sock.recv(65536)
        assert b"attached" in data.replace(b"at''tached", b""), data
        sock.sendall(b"\x18")  # ctrl-x
        _read_to_eof(sock, b"")  # the daemon ends the stream
        state = _inspect(daemon, "more-detach")["State"]
        assert state["Running"] and state["Status"] == "running"
        # Still usable afterwards: exec into the same shell's container.
        assert _ok(daemon.docker("exec", "more-detach", "echo", "alive")).strip() == "alive"
        time.sleep(0.1)
        actions = _events(daemon, since, time.time(), "container=more-detach", fmt="{{.Action}}")
        assert "detach" in actions, actions  # dockerd logs a detach event
    finally:
        if sock is not None:
            sock.close()
        daemon.docker("rm", "-f", "more-detach")


def test_attach_logs_without_stream_returns_earlier_output(daemon):
    script = "echo out1; echo err1 >&2; echo out2"
    result = daemon.docker("run", "--name", "more-attach-logs", "busybox", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    try:
        base = "/v1.41/containers/more-attach-logs/attach?logs=1&stream=0"
        status, sock, data = _hijack(daemon, base + "&stdout=1")
        with sock:
            frames = _frames(_read_to_eof(sock, data))
        assert status == b"HTTP/1.1 101 UPGRADED"
        assert {stream for stream, _ in frames} == {1}
        assert b"".join(payload for _, payload in frames) == b"out1\nout2\n"

        status, sock, data = _hijack(daemon, base + "&stdout=1&stderr=1")
        with sock:
            frames = _frames(_read_to_eof(sock, data))
        out = b"".join(payload for stream, payload in frames if stream == 1)
        err = b"".join(payload for stream, payload in frames if stream == 2)
        assert (out, err) == (b"out1\nout2\n", b"err1\n")
        assert {stream for stream, _ in frames} == {1, 2}
        # The container is untouched by reading its output.
        assert _inspect(daemon, "more-attach-logs")["State"]["Status"] == "exited"
    finally:
        daemon.docker("rm", "-f", "more-attach-logs")


# -- 5. logs -----------------------------------------------------------------------------------


def test_logs_follow_streams_new_lines_as_they_are_written(daemon):
    counter = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.2; done"
    _ok(daemon.docker("run", "-d", "--name", "more-follow", "busybox", "sh", "-c", counter))
    client = daemon.client()
    try:
        _wait_for_log(daemon, "more-follow", "2\n")
        seen = int(daemon.docker("logs", "more-follow").stdout.split()[-1])
        stream = client.containers.get("more-follow").logs(stream=True, follow=True, tail=0)
        buffer, lines, moments = b"", [], []
        for chunk in stream:
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                lines.append(int(line))
                moments.append(time.monotonic())
            if len(lines) >= 3:
                break
        stream.close()
        # tail=0: only lines written after the request, each one once, in order.
        assert lines[0] > seen
        assert lines[:3] == [lines[0], lines[0] + 1, lines[0] + 2]
        # They arrive as the container writes them (0.2 s apart), not in one batch.
        assert moments[2] - moments[0] >= 0.25
    finally:
        client.close()
        daemon.docker("rm", "-f", "more-follow")


def test_logs_since_and_until_select_lines_by_timestamp(daemon):
    script = "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done"
    result = daemon.docker("run", "--name", "more-since", "busybox", "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    try:
        stamped = _ok(daemon.docker("logs", "--timestamps", "more-since")).splitlines()
        assert [line.split(" ", 1)[1] for line in stamped] == [f"line{i}" for i in range(1, 6)]
        stamps = [line.split(" ", 1)[0] for line in stamped]
        assert all(s.endswith("Z") and "T" in s for s in stamps), stamps

        def lines(*args: str) -> list[str]:
            return _ok(daemon.docker("logs", *args, "more-since")).split()

        # Both bounds are inclusive, to the nanosecond.
        assert lines("--since", stamps[2]) == ["line3", "line4", "line5"]
        assert lines("--until", stamps[2]) == ["line1", "line2", "line3"]
        assert lines("--since", stamps[1], "--until", stamps[3]) == ["line2", "line3", "line4"]
        assert lines("--since", stamps[4], "--timestamps") == [stamps[4], "line5"]
    finally:
        daemon.docker("rm", "-f", "more-since")


# -- 6. stats ----------------------------------------------------------------------------------


def test_stats_stream_samples_chain_cpu_and_carry_blkio(daemon):
    _ok(daemon.docker("run", "-d", "--name", "more-stats", "busybox", "sleep", "300"))
    client = daemon.client()
    try:
        samples = client.containers.get("more-stats").stats(stream=True, decode=True)
        first, second = next(samples), next(samples)
        samples.close()
        assert first["read"] != second["read"]
        assert second["read"] > first["read"]
        # Each sample carries the previous one's CPU figures, as dockerd does.
        assert second["preread"] == first["read"]
        assert second["precpu_stats"] == first["cpu_stats"]
        assert second["cpu_stats"]["cpu_usage"]["total_usage"] > 0
        for sample in (first, second):
            assert sample["name"] == "/more-stats"
            assert "io_service_bytes_recursive" in sample["blkio_stats"]
            value = sample["blkio_stats"]["io_service_bytes_recursive"]
            assert value is None or isinstance(value, list)
            assert sample["memory_stats"]["usage"] > 0
    finally:
        client.close()
        daemon.docker("rm", "-f", "more-stats")


# -- 7. events ---------------------------------------------------------------------------------


def _line_reader(process: subprocess.Popen) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for raw in process.stdout:
            lines.put(raw.decode().rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_line(lines: queue.Queue, wanted: str, deadline: float) -> list[str]:
    seen = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            line = lines.get(timeout=max(0.01, end - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        if line == wanted:
            return seen
    raise AssertionError(f"no {wanted!r} among {seen}")


def test_live_events_stream_reports_create_and_start(daemon):
    process = subprocess.Popen(
        ["docker", "events", "--format", "{{.Action}} {{.Actor.Attributes.name}}"],
        env=daemon.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    tags = []
    try:
        lines = _line_reader(process)
        # Tag until the stream shows it: then the subscription is surely live.
        for attempt in range(20):
            tag = f"more-probe:{attempt}"
            _ok(daemon.docker("tag", "busybox", tag))
            tags.append(tag)
            try:
                _wait_line(lines, f"tag {tag}", 0.5)
                break
            except AssertionError:
                continue
        else:
            raise AssertionError("docker events never reported a tag")
        _ok(daemon.docker("create", "--name", "more-live", "busybox", "true"))
        _ok(daemon.docker("start", "more-live"))
        seen = _wait_line(lines, "start more-live", 15)
        assert "create more-live" in seen
        assert seen.index("create more-live") < seen.index("start more-live")
        assert process.poll() is None  # no --until: still streaming
    finally:
        process.kill()
        process.wait()
        daemon.docker("rm", "-f", "more-live")
        if tags:
            daemon.docker("rmi", *tags)


def test_events_filters_by_image_and_label(daemon):
    _ok(daemon.docker("tag", "busybox", "more-other:v1"))
    names = ["more-ev-busybox", "more-ev-other"]
    try:
        since = time.time()
        # Created as busybox:latest: Docker's image filter also matches the untagged name.
        _ok(daemon.docker("run", "--name", names[0], "-l", "evk=one", "busybox:latest", "true"))
        _ok(daemon.docker("run", "--name", names[1], "-l", "evk=two", "more-other:v1", "true"))
        time.sleep(0.1)
        until = time.time()
        fmt = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"

        by_label = _events(daemon, since, until, "label=evk=two", fmt=fmt)
        assert {line.split()[2] for line in by_label} == {names[1]}, by_label
        assert "container create more-ev-other" in by_label
        assert "container die more-ev-other" in by_label
        assert _events(daemon, since, until, "label=evk=three", fmt=fmt) == []

        by_image = _events(daemon, since, until, "image=busybox", fmt=fmt)
        assert by_image, "no events for image=busybox"
        assert {line.split()[2] for line in by_image} == {names[0]}, by_image
        assert [line.split()[1] for line in by_image if line.split()[1] != "attach"] == [
            "create",
            "start",
            "die",
        ]
    finally:
        daemon.docker("rm", "-f", *names)
        daemon.docker("rmi", "more-other:v1")


# -- 8. ps filters -----------------------------------------------------------------------------


def test_ps_filters_select_exactly_the_expected_containers(daemon):
    names = ["psf-one", "psf-two", "psf-three", "psf-four"]
    images = ["more-imported:v1"]
    try:
        one = daemon.docker(
            "run", "--name", "psf-one", "-l", "psf=one", "busybox", "sh", "-c", "exit 3"
        )
        assert one.returncode == 3, one.stderr
        _ok(daemon.docker("run", "--name", "psf-two", "-l", "psf=two", "busybox", "true"))
        _ok(
            daemon.docker(
                "run", "-d", "--name", "psf-three", "-l", "psf=three", "busybox", "sleep", "300"
            )
        )
        # An image that does not descend from busybox (import has no parent).
        exported = daemon.docker("export", "psf-two").stdout
        _ok(daemon.docker("import", "-", images[0], input=exported))
        _ok(daemon.docker("create", "--name", "psf-four", "-l", "psf=four", images[0], "true"))
        two_id = _inspect(daemon, "psf-two")["Id"]

        mine = ("--filter", "label=psf")
        # Newest first, as dockerd sorts.
        assert _names(daemon, "-a", *mine) == ["psf-four", "psf-three", "psf-two", "psf-one"]
        assert _names(daemon, *mine) == ["psf-three"]  # no -a: running only
        assert _names(daemon, "--filter", "status=exited", *mine) == ["psf-two", "psf-one"]
        assert _names(daemon, "--filter", "status=running", *mine) == ["psf-three"]
        assert _names(daemon, "--filter", "status=created", *mine) == ["psf-four"]
        assert _names(daemon, "-a", "--filter", "label=psf=two") == ["psf-two"]
        assert _names(daemon, "-a", "--filter", "exited=3", *mine) == ["psf-one"]
        # A created container never exited: exited=0 leaves it out.
        assert _names(daemon, "-a", "--filter", "exited=0", *mine) == ["psf-two"]
        assert _names(daemon, "-a", "--filter", "ancestor=busybox", *mine) == [
            "psf-three",
            "psf-two",
            "psf-one",
        ]
        assert _names(daemon, "-a", "--filter", f"ancestor={images[0]}", *mine) == ["psf-four"]
        assert _names(daemon, "-a", "--filter", "before=psf-three", *mine) == [
            "psf-two",
            "psf-one",
        ]
        assert _names(daemon, "-a", "--filter", "since=psf-two", *mine) == [
            "psf-four",
            "psf-three",
        ]
        assert _names(daemon, "-a", "--filter", f"id={two_id[:12]}") == ["psf-two"]
        assert _names(daemon, "-a", "--filter", "status=exited", "--filter", "exited=3") == [
            "psf-one"
        ]
        bad = daemon.docker("ps", "--filter", "status=sleeping")
        assert bad.returncode == 1
        assert b"Invalid filter 'status=sleeping'" in bad.stderr, bad.stderr
    finally:
        daemon.docker("rm", "-f", *names)
        daemon.docker("rmi", *images)


def test_ps_ancestor_filter_includes_descendant_images(daemon):
    """Docker documents that ancestor= matches an image "or a descendant of it"."""
    names = ["psa-base", "psa-child"]
    image = "more-child:v1"
    try:
        _ok(daemon.docker("run", "--name", "psa-base", "-l", "psa=1", "busybox", "touch", "/m"))
        _ok(daemon.docker("commit", "psa-base", image))
        _ok(daemon.docker("create", "--name", "psa-child", "-l", "psa=1", image, "true"))
        mine = ("--filter", "label=psa")
        assert _names(daemon, "-a", "--filter", f"ancestor={image}", *mine) == ["psa-child"]
        assert _names(daemon, "-a", "--filter", "ancestor=busybox", *mine) == [
            "psa-child",
            "psa-base",
        ]
    finally:
        daemon.docker("rm", "-f", *names)
        daemon.docker("rmi", image)


# -- 9. images filters -------------------------------------------------------------------------


def _image_refs(daemon, *filters: str) -> set[str]:
    args = ["images", "--format", "{{.Repository}}:{{.Tag}}"]
    for item in filters:
        args += ["--filter", item]
    return set(_ok(daemon.docker(*args)).split())


def _created(daemon, ref: str) -> str:
    return json.loads(_ok(daemon.docker("image", "inspect", ref)))[0]["Created"]


def test_images_before_and_since_filters(daemon):
    first, second = "more-img:first", "more-img:second"
    try:
        _ok(daemon.docker("run", "--name", "more-img-src", "busybox", "touch", "/a"))
        _ok(daemon.docker("commit", "more-img-src", first))
        # A whole second later, so the order holds at any timestamp precision.
        start = time.time()
        while _created(daemon, first)[:19] == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()):
            assert time.time() - start < 3
            time.sleep(0.05)
        _ok(daemon.docker("commit", "more-img-src", second))

        ours = {"busybox:latest", first, second}
        assert _image_refs(daemon, f"before={second}") & ours == {"busybox:latest", first}
        assert _image_refs(daemon, f"before={first}") & ours == {"busybox:latest"}
        assert _image_refs(daemon, f"since={first}") & ours == {second}
        assert _image_refs(daemon, "since=busybox") & ours == {first, second}
        assert _image_refs(daemon, f"since={second}") & ours == set()
        missing = daemon.docker("images", "--filter", "since=more-img:nope")
        assert missing.returncode == 1 and b"No such image" in missing.stderr, missing.stderr
    finally:
        daemon.docker("rm", "-f", "more-img-src")
        daemon.docker("rmi", first, second)


def test_images_filters_order_images_committed_within_one_second(daemon):
    """Docker compares creation times to the nanosecond, not the whole second."""
    refs: list[str] = []
    try:
        _ok(daemon.docker("run", "--name", "more-fast-src", "busybox", "touch", "/a"))
        pair = None
        for attempt in range(4):  # commits are fast: two soon land in the same second
            ref = f"more-fast:{attempt}"
            _ok(daemon.docker("commit", "more-fast-src", ref))
            refs.append(ref)
            if len(refs) >= 2 and _created(daemon, refs[-2])[:19] == _created(daemon, ref)[:19]:
                pair = refs[-2], ref
                break
        assert pair is not None, "no two commits within one second"
        older, newer = pair
        assert _created(daemon, older) < _created(daemon, newer)
        assert older in _image_refs(daemon, f"before={newer}")
        assert newer in _image_refs(daemon, f"since={older}")
    finally:
        daemon.docker("rm", "-f", "more-fast-src")
        if refs:
            daemon.docker("rmi", *refs)


def test_ps_filters_over_raw_http(daemon):
    """GET /containers/json with a JSON filters parameter, as docker-py sends it."""
    _ok(daemon.docker("create", "--name", "more-raw-ps", "-l", "raw=yes", "busybox", "true"))
    try:
        wanted = quote(json.dumps({"label": ["raw=yes"]}))
        status, body = _request(daemon, "GET", f"/v1.41/containers/json?all=1&filters={wanted}")
        assert status == 200
        assert [entry["Names"] for entry in body] == [["/more-raw-ps"]]
        wanted = quote(json.dumps({"nope": ["x"]}))
        status, body = _request(daemon, "GET", f"/v1.41/containers/json?filters={wanted}")
        assert status == 400 and body == {"message": "invalid filter 'nope'"}
    finally:
        daemon.docker("rm", "-f", "more-raw-ps")
