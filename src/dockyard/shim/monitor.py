"""One container's monitor: a small single-threaded event loop.

It creates the container through the OCI runtime with pipes (or a pty) for its stdio, then
serves shim.sock: start, attach (output frames out, stdin in), wait, kill, resize, state.
Output goes to the json-file log and to every attached client. When the container's init
exits it drains the output, records the exit status in exit.json (atomically), deletes the
runtime's state, answers the waiters and exits. The daemon may come and go meanwhile.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import sys
import termios
import time

from dockyard.runtime import linux
from dockyard.shim import protocol
from dockyard.shim.jsonlog import JsonFileLog, timestamp
from dockyard.shim.runtimes import OCIRuntime, RuntimeFailure, runtime_for

# A client that reads slower than the container writes is dropped past this much backlog.
MAX_CLIENT_BACKLOG = 64 * 1024 * 1024
DRAIN_SECONDS = 1.0


def socket_path(directory_fd: int, name: str = "shim.sock") -> str:
    """A short path to a socket in a directory: sun_path holds only 108 bytes."""
    return f"/proc/self/fd/{directory_fd}/{name}"


def write_atomic(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
    directory = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class Client:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.inbox = b""
        self.outbox = bytearray()
        self.mode = "request"
        self.streams: set[int] = set()
        self.stdin = False
        self.closing = False  # close once the outbox is flushed
        self.read_eof = False  # the client half-closed: output only from now on
        self.events = selectors.EVENT_READ  # what the selector watches for it (0: nothing)


class Monitor:
    def __init__(self, directory: str, config: dict):
        self.directory = directory
        self.config = config
        self.id: str = config["id"]
        self.tty: bool = bool(config.get("tty"))
        self.runtime: OCIRuntime = runtime_for(config["runtime"], config["runtime_root"])
        self.selector = selectors.DefaultSelector()
        self.clients: dict[int, Client] = {}
        self.waiters: list[Client] = []
        self.pid = 0
        self.started_at = ""
        self.exit: dict | None = None
        self.outputs: dict[int, int] = {}  # fd -> stream number
        self.stdin_fd: int | None = None
        self.stdin_buffer = bytearray()
        self.stdin_closed = False
        self.pty_master: int | None = None
        log = config.get("log") or {}
        self.log = (
            JsonFileLog(log["path"], log.get("max_size", 0), log.get("max_file", 1))
            if log.get("driver", "json-file") == "json-file" and log.get("path")
            else None
        )

    # -- setup --------------------------------------------------------------------------------

    def create(self) -> None:
        bundle = self.config["bundle"]
        pid_file = os.path.join(self.directory, "init.pid")
        # The init's parent exits after create: as subreaper we inherit the container.
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        if self.tty:
            self.pid = self._create_with_pty(bundle, pid_file)
        else:
            self.pid = self._create_with_pipes(bundle, pid_file)

    def _create_in_child(
        self,
        bundle: str,
        stdio: tuple[int, int, int],
        console_fd: int | None,
        console_path: str | None,
        pid_file: str,
    ) -> int:
        """Run the runtime's create in a short-lived child: the memory it churns (spec,
        seccomp compilation) dies with the child instead of staying in every monitor."""
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(read_end)
            try:
                try:
                    self.runtime.delete(self.id, force=True)  # leftovers of an earlier run
                except RuntimeFailure:
                    pass
                pid = self.runtime.create(
                    self.id, bundle, stdio, console_fd, console_path, pid_file
                )
                os.write(write_end, protocol.encode({"pid": pid}))
            except Exception as error:  # reported to the parent, which raises it
                os.write(write_end, protocol.encode({"error": str(error) or repr(error)}))
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as answer_file:
            answer = answer_file.read()
        os.waitpid(child, 0)
        if not answer:
            raise RuntimeFailure("the runtime's create died")
        message = protocol.decode(answer)
        if "error" in message:
            raise RuntimeFailure(message["error"])
        return int(message["pid"])

    def _create_with_pipes(self, bundle: str, pid_file: str) -> int:
        devnull = os.open(os.devnull, os.O_RDWR)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        if self.config.get("stdin"):
            in_r, in_w = os.pipe()
            self.stdin_fd = in_w
            os.set_blocking(in_w, False)
        else:
            in_r = devnull
        try:
            pid = self._create_in_child(bundle, (in_r, out_w, err_w), None, None, pid_file)
        finally:
            for fd in {out_w, err_w, in_r, devnull}:
                os.close(fd)
        self.outputs = {out_r: protocol.STDOUT, err_r: protocol.STDERR}
        return pid

    def _create_with_pty(self, bundle: str, pid_file: str) -> int:
        devnull = os.open(os.devnull, os.O_RDWR)
        stdio = (devnull, devnull, devnull)
        try:
            if self.runtime.name == "dockyard-runtime":
                ours, theirs = socket.socketpair()
                with ours, theirs:
                    pid = self._create_in_child(bundle, stdio, theirs.fileno(), None, pid_file)
                    master = _receive_fd(ours)
            else:
                listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                directory_fd = os.open(self.directory, os.O_PATH)
                path = socket_path(directory_fd, "console.sock")
                with listener:
                    listener.bind(path)
                    listener.listen(1)
                    pid = self._create_in_child(bundle, stdio, None, path, pid_file)
                    connection, _ = listener.accept()
                    with connection:
                        master = _receive_fd(connection)
                    os.unlink(path)
                os.close(directory_fd)
        finally:
            os.close(devnull)
        size = self.config.get("console_size")
        self.pty_master = master
        if size and size[0] and size[1]:
            self.resize(size[0], size[1])
        self.outputs = {master: protocol.STDOUT}
        self.stdin_fd = master
        return pid

    # -- operations -----------------------------------------------------------------------

    def start(self) -> None:
        if self.started_at:
            return
        self.runtime.start(self.id)
        self.started_at = timestamp()

    def resize(self, height: int, width: int) -> None:
        if self.pty_master is not None:
            fcntl.ioctl(
                self.pty_master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0)
            )

    def state(self) -> dict:
        status = "exited" if self.exit else ("running" if self.started_at else "created")
        return {"pid": self.pid, "status": status, "started_at": self.started_at, "exit": self.exit}

    # -- the loop ---------------------------------------------------------------------------

    def serve(self, listener: socket.socket, ready_fd: int) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, "listen")
        self.selector.register(wake_r, selectors.EVENT_READ, "signal")
        for fd in self.outputs:
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ, "output")
        os.write(ready_fd, protocol.encode({"pid": self.pid}))
        os.close(ready_fd)
        self._reap()  # the container may already be gone
        # After the exit, linger only while clients still have output to receive.
        while self.exit is None or self._pending_writes():
            ready = self.selector.select(timeout=None if self.exit is None else 5.0)
            if not ready and self.exit is not None:
                break
            for key, events in ready:
                self._dispatch(key, events, listener, wake_r)
        self._finish(listener)

    def _pending_writes(self) -> bool:
        return any(c.outbox for c in self.clients.values())

    def _dispatch(self, key, events, listener, wake_r) -> None:
        kind = key.data
        if kind == "listen":
            sock, _ = listener.accept()
            sock.setblocking(False)
            self.clients[sock.fileno()] = Client(sock)
            self.selector.register(sock, selectors.EVENT_READ, "client")
        elif kind == "signal":
            try:
                os.read(wake_r, 4096)
            except BlockingIOError:
                pass
            self._reap()
        elif kind == "output":
            self._read_output(key.fd)
        elif kind == "stdin":
            self._flush_stdin()
        elif kind == "client":
            client = self.clients.get(key.fd)
            if client is None:
                return
            if events & selectors.EVENT_READ:
                self._read_client(client)
            if events & selectors.EVENT_WRITE and key.fd in self.clients:
                self._write_client(client)

    def _read_output(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as error:
            if error.errno != errno.EIO:  # EIO: the pty's last slave closed
                raise
            data = b""
        if not data:
            self.selector.unregister(fd)
            del self.outputs[fd]
            if fd != self.pty_master:
                os.close(fd)
            return
        stream = self.outputs[fd]
        if self.log is not None:
            self.log.write("stdout" if stream == protocol.STDOUT else "stderr", data)
        payload = data if self.tty else None
        for client in list(self.clients.values()):
            if client.mode == "attach" and stream in client.streams:
                self._send(client, payload if payload is not None else protocol.frame(stream, data))

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid and self.exit is None:
                code = os.waitstatus_to_exitcode(status)
                self._exited(code if code >= 0 else 128 - code)

    def _exited(self, code: int) -> None:
        self._drain_outputs()
        oom = self._oom_killed()
        self.exit = {
            "exit_code": code,
            "finished_at": timestamp(),
            "oom_killed": oom,
            "started_at": self.started_at,
        }
        if self.log is not None:
            self.log.close()
            self.log = None
        write_atomic(os.path.join(self.directory, "exit.json"), json.dumps(self.exit).encode())
        try:
            self.runtime.delete(self.id, force=True)
        except Exception as error:  # the exit is recorded; the daemon collects leftovers
            print(f"shim {self.id}: deleting the runtime's container: {error}", file=sys.stderr)
        for waiter in self.waiters:
            self._reply(waiter, self.exit, close=True)
        self.waiters.clear()
        for client in list(self.clients.values()):
            if client.mode == "attach":
                client.closing = True
                if not client.outbox:
                    self._drop(client)

    def _drain_outputs(self) -> None:
        """Read what the container wrote before it died (others may hold the pipes: bounded)."""
        deadline = time.monotonic() + DRAIN_SECONDS
        while self.outputs and time.monotonic() < deadline:
            for key, _ in self.selector.select(timeout=max(0.0, deadline - time.monotonic())):
                if key.data == "output":
                    self._read_output(key.fd)
            if not self.outputs:
                break
        for fd in list(self.outputs):
            self.selector.unregister(fd)
            os.close(fd)
        self.outputs.clear()

    def _oom_killed(self) -> bool:
        path = self.config.get("cgroup_path")
        if not path:
            return False
        from dockyard.runtime.cgroups import Cgroup, CgroupError

        try:
            return Cgroup(path).oom_kill_count() > 0
        except (CgroupError, OSError):
            return False

    # -- clients ----------------------------------------------------------------------------

    def _read_client(self, client: Client) -> None:
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if client.mode == "attach":
            if data:
                if client.stdin:
                    self._write_stdin(data)
                return
            # End of the client's input: output keeps flowing until the container exits.
            client.read_eof = True
            if client.stdin and self.config.get("stdin_once"):
                self._close_stdin()
            client.stdin = False
            self._watch(client)
            return
        if not data:
            self._drop(client)
            return
        client.inbox += data
        while client.mode == "request" and b"\n" in client.inbox:
            line, _, client.inbox = client.inbox.partition(b"\n")
            try:
                self._request(client, protocol.decode(line))
            except (ValueError, KeyError, TypeError) as error:
                self._reply(client, {"error": f"bad request: {error}"}, close=True)
        if client.mode == "attach" and client.inbox:
            if client.stdin:
                self._write_stdin(client.inbox)
            client.inbox = b""

    def _request(self, client: Client, message: dict) -> None:
        op = message.get("op")
        try:
            if op == "state":
                self._reply(client, self.state(), close=True)
            elif op == "start":
                self.start()
                self._reply(client, {"ok": True, "started_at": self.started_at}, close=True)
            elif op == "kill":
                if self.exit is not None:
                    raise RuntimeFailure("container is not running")
                self.runtime.kill(self.id, int(message["signal"]), bool(message.get("all")))
                self._reply(client, {"ok": True}, close=True)
            elif op == "resize":
                self.resize(int(message["height"]), int(message["width"]))
                self._reply(client, {"ok": True}, close=True)
            elif op == "wait":
                if self.exit is not None:
                    self._reply(client, self.exit, close=True)
                else:
                    self.waiters.append(client)
            elif op == "attach":
                client.streams = {
                    stream
                    for stream, wanted in (
                        (protocol.STDOUT, message.get("stdout")),
                        (protocol.STDERR, message.get("stderr")),
                    )
                    if wanted
                }
                client.stdin = bool(message.get("stdin")) and self.stdin_fd is not None
                self._reply(client, {"ok": True, "tty": self.tty})
                client.mode = "attach"
                if self.exit is not None:
                    client.closing = True
            elif op == "close_stdin":
                self._close_stdin()
                self._reply(client, {"ok": True}, close=True)
            else:
                self._reply(client, {"error": f"unknown op {op!r}"}, close=True)
        except RuntimeFailure as error:
            self._reply(client, {"error": str(error)}, close=True)
        except OSError as error:
            self._reply(client, {"error": str(error)}, close=True)

    def _reply(self, client: Client, message: dict, close: bool = False) -> None:
        self._send(client, protocol.encode(message))
        if close:
            client.closing = True

    def _send(self, client: Client, data: bytes) -> None:
        if len(client.outbox) + len(data) > MAX_CLIENT_BACKLOG:
            self._drop(client)
            return
        client.outbox += data
        self._write_client(client)

    def _write_client(self, client: Client) -> None:
        if client.outbox:
            try:
                sent = client.sock.send(client.outbox)
                del client.outbox[:sent]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._drop(client)
                return
        if not client.outbox and client.closing:
            self._drop(client)
            return
        self._watch(client)

    def _watch(self, client: Client) -> None:
        """Watch for input until the client half-closes, and for writability while backlogged."""
        events = 0 if client.read_eof else selectors.EVENT_READ
        if client.outbox:
            events |= selectors.EVENT_WRITE
        if events == client.events:
            return
        if client.events and events:
            self.selector.modify(client.sock, events, "client")
        elif events:
            self.selector.register(client.sock, events, "client")
        else:
            self.selector.unregister(client.sock)
        client.events = events

    def _drop(self, client: Client) -> None:
        self.clients.pop(client.sock.fileno(), None)
        if client in self.waiters:
            self.waiters.remove(client)
        if client.events:
            self.selector.unregister(client.sock)
            client.events = 0
        client.sock.close()

    # -- stdin ------------------------------------------------------------------------------

    def _write_stdin(self, data: bytes) -> None:
        if self.stdin_fd is None or self.stdin_closed:
            return
        self.stdin_buffer += data
        self._flush_stdin()

    def _flush_stdin(self) -> None:
        if self.stdin_fd is None:
            return
        try:
            while self.stdin_buffer:
                written = os.write(self.stdin_fd, self.stdin_buffer)
                del self.stdin_buffer[:written]
        except BlockingIOError:
            pass
        except OSError:
            self.stdin_buffer.clear()
        if self.pty_master is not None:
            return  # the master is already watched for output; a short write is retried then
        registered = self.stdin_fd in self.selector.get_map()
        if self.stdin_buffer and not registered:
            self.selector.register(self.stdin_fd, selectors.EVENT_WRITE, "stdin")
        elif not self.stdin_buffer and registered:
            self.selector.unregister(self.stdin_fd)

    def _close_stdin(self) -> None:
        if self.stdin_fd is None or self.stdin_closed:
            return
        self.stdin_closed = True
        if self.pty_master is not None:
            os.write(self.pty_master, b"\x04")  # EOF for a terminal is ^D
            return
        if self.stdin_fd in self.selector.get_map():
            self.selector.unregister(self.stdin_fd)
        os.close(self.stdin_fd)
        self.stdin_fd = None

    def _finish(self, listener: socket.socket) -> None:
        for client in list(self.clients.values()):
            self._drop(client)
        listener.close()


def _receive_fd(sock: socket.socket) -> int:
    _, fds, _, _ = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise RuntimeFailure("the runtime sent no pty master")
    return fds[0]
