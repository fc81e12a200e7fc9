"""dockyard-shim, the per-container monitor program, driven directly: a real process stands in
for the container's init (a child of the monitor, as after the runtime's create), and the
tests speak shim.sock's protocol and read the json-file log and exit.json it writes."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import socket
import struct
import termios
import time
from pathlib import Path

import pytest

from dockyard.shim import protocol
from dockyard.shim.locate import monitor_binary

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
pytestmark = pytest.mark.timeout(60)


class Shim:
    def __init__(self, directory: Path, pid: int, init_pid: int):
        self.directory = directory
        self.pid = pid
        self.init_pid = init_pid
        self.log = directory / "container-json.log"

    def connect(self, request: bytes) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(self.directory / "shim.sock"))  # blocking: waits out a full backlog
        sock.settimeout(30)
        sock.sendall(request)
        return sock

    def ask(self, op: str, *args: int) -> dict:
        with self.connect(protocol.request(op, *args)) as sock:
            return json.loads(_read_line(sock))

    def attach(self, stdin: bool, stdout: bool = True, stderr: bool = True) -> socket.socket:
        sock = self.connect(protocol.request("attach", stdin, stdout, stderr))
        answer = json.loads(_read_line(sock))
        assert answer["ok"] is True
        return sock

    def wait_gone(self) -> None:
        """The monitor exits once the container did and its clients are served."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return
            time.sleep(0.02)
        raise AssertionError("the monitor did not exit")

    def entries(self, path: Path | None = None) -> list[dict]:
        lines = (path or self.log).read_bytes().splitlines()
        return [json.loads(line) for line in lines]


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _zombie_children(parent: int) -> list[int]:
    zombies = []
    for entry in os.listdir("/proc"):
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except (OSError, ValueError):
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid") == str(parent) and fields.get("State", "").startswith("Z"):
            zombies.append(int(entry))
    return zombies


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    frames = []
    while data:
        stream, length = struct.unpack(">BxxxI", data[:8])
        frames.append((stream, data[8 : 8 + length]))
        data = data[8 + length :]
    return frames


def _become_monitor(script: str, tty: bool, theirs: tuple, passed: list[int], argv: list[str]):
    """In a forked child: start the "container" as our child, then exec the monitor."""
    init = os.fork()
    if init == 0:
        if tty:
            os.setsid()
            fcntl.ioctl(theirs[0], termios.TIOCSCTTY, 0)
        for fd, target in zip((0, 1, 2), theirs, strict=True):
            os.dup2(target, fd)
        os.execv("/bin/sh", ["sh", "-c", script])
    for fd in passed:  # only now: the container must not hold the monitor's ends
        os.set_inheritable(fd, True)
    os.execv(argv[0], [*argv, "--pid", str(init)])


@pytest.fixture
def launch(tmp_path):
    """Start `sh -c script` under a monitor; every monitor and init is killed at the end."""
    started: list[Shim] = []

    def start(script: str, *, tty=False, stdin=False, stdin_once=False, log=True, extra=()):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(tmp_path / "shim.sock"))
        listener.listen(16)
        ready_r, ready_w = os.pipe()
        if tty:
            master, slave = pty.openpty()
            theirs, ours = (slave, slave, slave), {"--pty-fd": master}
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            in_r, in_w = os.pipe() if stdin else (os.open(os.devnull, os.O_RDONLY), None)
            theirs = (in_r, out_w, err_w)
            ours = {"--stdout-fd": out_r, "--stderr-fd": err_r}
            if in_w is not None:
                ours["--stdin-fd"] = in_w
        argv = [monitor_binary(), "--dir", str(tmp_path)]
        argv += ["--listen-fd", str(listener.fileno()), "--ready-fd", str(ready_w)]
        for flag, fd in ours.items():
            argv += [flag, str(fd)]
        if stdin_once:
            argv.append("--stdin-once")
        if log:
            argv += ["--log", str(tmp_path / "container-json.log"), *extra]
        monitor = os.fork()
        if monitor == 0:
            try:
                _become_monitor(
                    script, tty, theirs, [listener.fileno(), ready_w, *ours.values()], argv
                )
            finally:
                os._exit(127)
        listener.close()
        for fd in {*theirs, *ours.values(), ready_w}:
            os.close(fd)
        with os.fdopen(ready_r, "rb") as ready:
            init_pid = json.loads(ready.readline())["pid"]
        shim = Shim(tmp_path, monitor, init_pid)
        started.append(shim)
        return shim

    yield start
    for shim in started:
        for pid in (shim.init_pid, shim.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(shim.pid, 0)
        except ChildProcessError:
            pass


def test_log_entries_in_docker_json_file_format(launch):
    script = (
        r"""printf 'a"b\\c\tend\n'; printf '\377x\n'; printf 'caf\303\251\n' >&2; printf tail"""
    )
    shim = launch(script)
    shim.wait_gone()
    entries = shim.entries()
    assert [(e["stream"], e["log"]) for e in entries] == [
        ("stdout", 'a"b\\c\tend\n'),
        ("stdout", "\ufffdx\n"),  # not UTF-8: replaced, the line stays valid JSON
        ("stderr", "café\n"),
        ("stdout", "tail"),  # a last line without a newline is written at the end
    ]
    assert all(TIMESTAMP.match(e["time"]) for e in entries)
    assert [e["time"] for e in entries if e["stream"] == "stdout"] == sorted(
        e["time"] for e in entries if e["stream"] == "stdout"
    )


def test_long_lines_are_split_every_16_kib(launch):
    shim = launch("head -c 40000 /dev/zero | tr '\\0' x; echo")
    shim.wait_gone()
    lengths = [len(e["log"]) for e in shim.entries()]
    assert lengths == [16384, 16384, 40000 - 2 * 16384 + 1]
    assert "".join(e["log"] for e in shim.entries()) == "x" * 40000 + "\n"


def test_log_rotation_keeps_max_file_files_under_max_size(launch, tmp_path):
    shim = launch(
        "i=0; while [ $i -lt 300 ]; do echo line$i; i=$((i+1)); done",
        extra=("--log-max-size", "2000", "--log-max-file", "3"),
    )
    shim.wait_gone()
    files = sorted(p.name for p in tmp_path.glob("container-json.log*"))
    assert files == ["container-json.log", "container-json.log.1", "container-json.log.2"]
    for name in files:
        assert 0 < (tmp_path / name).stat().st_size <= 2000
    kept = [e["log"] for name in reversed(files) for e in shim.entries(tmp_path / name)]
    assert kept[-1] == "line299\n"
    numbers = [int(line[4:]) for line in kept]
    assert numbers == list(range(numbers[0], 300))  # oldest file first, nothing out of order


def test_exit_is_recorded_and_answered(launch, tmp_path):
    shim = launch("read x; exit 7", stdin=True)
    assert shim.ask("state") == {"pid": shim.init_pid, "status": "running", "exit": None}
    waiter = shim.connect(protocol.request("wait"))
    with shim.attach(stdin=True) as attached:
        attached.sendall(b"go\n")
        assert _read_all(attached) == b""
    exit_record = json.loads(_read_line(waiter))
    waiter.close()
    assert exit_record["exit_code"] == 7
    assert TIMESTAMP.match(exit_record["finished_at"])
    assert json.loads((tmp_path / "exit.json").read_text()) == exit_record
    assert not (tmp_path / "exit.json.tmp").exists()
    shim.wait_gone()


def test_killed_by_a_signal_exits_128_plus_signal(launch, tmp_path):
    shim = launch("sleep 60")
    waiter = shim.connect(protocol.request("wait"))
    os.kill(shim.init_pid, signal.SIGTERM)
    assert json.loads(_read_line(waiter))["exit_code"] == 128 + signal.SIGTERM
    waiter.close()
    shim.wait_gone()


def test_attach_frames_stdout_and_stderr_and_feeds_stdin(launch):
    shim = launch('read line; echo "got $line"; echo oops >&2', stdin=True)
    with shim.attach(stdin=True) as sock:
        sock.sendall(b"hello\n")
        frames = _frames(_read_all(sock))
    assert sorted(frames) == [(1, b"got hello\n"), (2, b"oops\n")]
    shim.wait_gone()


def test_attach_only_the_streams_asked_for(launch):
    shim = launch("read x; echo out; echo err >&2", stdin=True)
    errors_only = shim.attach(stdin=False, stdout=False, stderr=True)
    with shim.attach(stdin=True, stdout=False, stderr=False) as feeder:
        feeder.sendall(b"\n")
        assert _read_all(feeder) == b""
    assert _frames(_read_all(errors_only)) == [(2, b"err\n")]
    errors_only.close()


def test_stdin_once_closes_stdin_after_all_of_it_was_written(launch):
    """More than a pipe holds: what waits in the monitor reaches the container before EOF."""
    payload = os.urandom(3 * 1024 * 1024)
    shim = launch("cat", stdin=True, stdin_once=True, log=False)
    with shim.attach(stdin=True, stderr=False) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        frames = _frames(_read_all(sock))
    assert b"".join(data for _, data in frames) == payload
    assert {stream for stream, _ in frames} == {1}
    shim.wait_gone()


def test_tty_output_is_raw_and_resize_reaches_the_terminal(launch):
    shim = launch("read x; stty size; exit 3", tty=True)
    assert shim.ask("resize", 33, 99) == {"ok": True}
    with shim.attach(stdin=True) as sock:
        sock.sendall(b"go\n")
        output = _read_all(sock)
    assert b"33 99" in output
    assert not output.startswith(b"\x01\x00\x00\x00")  # no frame headers with a TTY
    shim.wait_gone()
    assert json.loads((shim.directory / "exit.json").read_text())["exit_code"] == 3


def test_close_stdin_on_a_tty_sends_end_of_file(launch):
    shim = launch("cat; echo done", tty=True)
    reader = shim.attach(stdin=False)
    assert shim.ask("close_stdin") == {"ok": True}
    assert b"done" in _read_all(reader)
    reader.close()
    shim.wait_gone()


def test_bad_requests_get_errors_and_the_monitor_keeps_serving(launch):
    shim = launch("sleep 60")
    assert "error" in shim.ask("bogus")
    assert "error" in shim.ask("attach")  # missing flags
    with shim.connect(b"x" * 5000) as sock:  # no newline, too long
        assert "error" in json.loads(_read_line(sock))
    with shim.connect(b"") as sock:
        sock.shutdown(socket.SHUT_WR)  # a client that says nothing
    assert shim.ask("state")["status"] == "running"


def test_the_monitor_reaps_orphans_and_outlives_its_clients(launch):
    shim = launch("sleep 0.2 & exec sleep 60")
    for _ in range(20):
        shim.connect(protocol.request("wait")).close()  # waiters that go away
    time.sleep(1)  # the background sleep has exited, re-parented to the monitor (subreaper)
    assert _zombie_children(shim.pid) == []
    waiter = shim.connect(protocol.request("wait"))
    assert shim.ask("state")["status"] == "running"  # the wait request has been read
    os.kill(shim.init_pid, signal.SIGKILL)
    assert json.loads(_read_line(waiter))["exit_code"] == 128 + signal.SIGKILL
    waiter.close()
    shim.wait_gone()
