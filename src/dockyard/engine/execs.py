"""`docker exec`: extra processes in a running container, through the runtime's `exec`.

Each session is created from Docker's exec body, started once, and keeps its exit code for
`GET /exec/{id}/json` (which is where the CLI takes its own exit code from). Without a TTY the
runtime runs in the foreground on our pipes and returns the process's status. With a TTY the
runtime detaches and hands us the pty master over a console socket; a small subreaper
(`dockyard.engine.exec_waiter`) inherits the process and reports its status.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import secrets
import socket
import struct
import sys
import termios
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.engine import containers as records
from dockyard.engine.errors import Conflict, EngineError, InvalidArgument, NotFound
from dockyard.engine.ocispec import capabilities_for
from dockyard.engine.users import resolve as resolve_user
from dockyard.shim import protocol

# Exited sessions stay inspectable this long (Docker collects them after 5 minutes too).
_KEEP_EXITED = 300.0
# Output a background child keeps flowing after the exec'd process exited is cut after this.
_DRAIN_AFTER_EXIT = 0.5
_EXEC_FAILED = 126  # Docker's exit code for an exec the runtime could not start

_BODY_TYPES = {
    "User": str,
    "Privileged": bool,
    "Tty": bool,
    "AttachStdin": bool,
    "AttachStdout": bool,
    "AttachStderr": bool,
    "Detach": bool,
    "DetachKeys": str,
    "Env": list,
    "WorkingDir": str,
    "Cmd": (list, str),
}


@dataclass
class ExecSession:
    id: str
    container_id: str
    config: dict
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    finished: float = 0.0
    master: int | None = None  # pty master (TTY sessions, while running)
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)  # held so they are not collected

    @property
    def command_text(self) -> str:
        return " ".join(self.config["Cmd"])


@dataclass
class Started:
    """A running session's streams: stdin (None unless attached) and output chunks, framed
    for Docker's non-TTY protocol or raw for a TTY."""

    session: ExecSession
    stdin: asyncio.StreamWriter | None
    output: AsyncIterator[bytes]

    async def wait(self) -> int:
        await self.session.exited.wait()
        return self.session.exit_code if self.session.exit_code is not None else -1


def _publish(engine, record: dict, action: str, **extra: str) -> None:
    engine.lifecycle._publish(record, action, **extra)


def _active_container(engine, ref: str) -> dict:
    record = engine.containers.get(ref)
    state = record["State"]
    if not state["Running"]:
        raise Conflict(f"Container {record['Id']} is not running")
    if state["Paused"]:
        raise Conflict(f"Container {record['Id']} is paused, unpause the container before exec")
    if state["Restarting"]:
        raise Conflict(
            f"Container {record['Id']} is restarting, wait until the container is running"
        )
    return record


def _collect(engine) -> None:
    """Forget sessions of removed containers and sessions long exited."""
    now = time.time()
    for exec_id, session in list(engine.execs.items()):
        try:
            engine.containers.get(session.container_id)
        except NotFound:
            del engine.execs[exec_id]
            continue
        if session.exit_code is not None and now - session.finished > _KEEP_EXITED:
            del engine.execs[exec_id]


def create(engine, ref: str, body: dict) -> str:
    for key, expected in _BODY_TYPES.items():
        if body.get(key) is not None and not isinstance(body[key], expected):
            raise InvalidArgument(f"json: cannot unmarshal into Go struct field ExecConfig.{key}")
    command = body.get("Cmd") or []
    if isinstance(command, str):
        command = [command]
    if not command or not all(isinstance(c, str) for c in command):
        raise InvalidArgument("No exec command specified")
    if not all(isinstance(e, str) for e in body.get("Env") or []):
        raise InvalidArgument("json: cannot unmarshal non-string into ExecConfig.Env")
    working_dir = body.get("WorkingDir") or ""
    if working_dir and not working_dir.startswith("/"):
        raise InvalidArgument(
            f"the working directory '{working_dir}' is invalid, it needs to be an absolute path"
        )
    record = _active_container(engine, ref)
    _collect(engine)
    config = {
        "User": body.get("User") or "",
        "Privileged": bool(body.get("Privileged")),
        "Tty": bool(body.get("Tty")),
        "AttachStdin": bool(body.get("AttachStdin")),
        "AttachStdout": bool(body.get("AttachStdout")),
        "AttachStderr": bool(body.get("AttachStderr")),
        "DetachKeys": body.get("DetachKeys") or "",
        "Env": list(body.get("Env") or []),
        "WorkingDir": working_dir,
        "Cmd": list(command),
    }
    session = ExecSession(secrets.token_hex(32), record["Id"], config)
    engine.execs[session.id] = session
    _publish(engine, record, f"exec_create: {session.command_text}", execID=session.id)
    return session.id


def get(engine, exec_id: str) -> ExecSession:
    session = engine.execs.get(exec_id)
    if session is None:
        raise NotFound(f"No such exec instance: {exec_id}")
    return session


def inspect(engine, exec_id: str) -> dict:
    session = get(engine, exec_id)
    config = session.config
    if session.running and not session.pid:
        session.pid = _read_pid(_files(engine, session)["pid"])
    return {
        "ID": session.id,
        "Running": session.running,
        "ExitCode": session.exit_code,
        "ProcessConfig": {
            "tty": config["Tty"],
            "entrypoint": config["Cmd"][0],
            "arguments": config["Cmd"][1:],
            "privileged": config["Privileged"],
            **({"user": config["User"]} if config["User"] else {}),
        },
        "OpenStdin": config["AttachStdin"],
        "OpenStderr": config["AttachStderr"],
        "OpenStdout": config["AttachStdout"],
        "CanRemove": False,
        "ContainerID": session.container_id,
        "DetachKeys": config["DetachKeys"],
        "Pid": session.pid,
    }


async def resize(engine, exec_id: str, height: int, width: int) -> None:
    session = get(engine, exec_id)
    if session.master is None:
        if not session.config["Tty"]:
            raise InvalidArgument(f"Exec {exec_id} does not have a TTY")
        return  # not started yet, or already gone: nothing to size
    with contextlib.suppress(OSError):
        fcntl.ioctl(session.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


# -- start --------------------------------------------------------------------------------


def _claim(engine, exec_id: str) -> tuple[ExecSession, dict]:
    session = get(engine, exec_id)
    if session.running:
        raise Conflict(f"Error: Exec command {exec_id} is already running")
    if session.started:
        raise Conflict(f"Error: Exec command {exec_id} has already run")
    record = _active_container(engine, session.container_id)
    session.started = True
    return session, record


def _files(engine, session: ExecSession) -> dict[str, Path]:
    directory = engine.config.exec_root / "execs"
    directory.mkdir(mode=0o700, exist_ok=True)
    stem = str(directory / session.id[:16])
    return {
        "process": Path(stem + ".json"),
        "pid": Path(stem + ".pid"),
        "log": Path(stem + ".log"),
        "console": Path(stem + ".sock"),
    }


def _process_spec(engine, record: dict, config: dict, tty: bool) -> dict:
    """The container's own process, changed as `docker exec` asks."""
    directory = records.container_dir(engine.config.data_root, record["Id"])
    try:
        spec = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError) as error:
        raise EngineError(f"cannot read the container's spec: {error}") from None
    process = dict(spec["process"])
    process.pop("consoleSize", None)
    process["args"] = config["Cmd"]
    process["terminal"] = tty
    process["env"] = _env(process.get("env") or [], record["Config"], config["Env"], tty)
    process["cwd"] = config["WorkingDir"] or process.get("cwd") or "/"
    host_config = record["HostConfig"]
    if config["User"]:
        uid, gid, groups = resolve_user(
            str(directory / "rootfs"), config["User"], list(host_config.get("GroupAdd") or [])
        )
        process["user"] = {"uid": uid, "gid": gid, "additionalGids": sorted({*groups, gid})}
    uid = process.get("user", {}).get("uid", 0)
    caps = capabilities_for({**host_config, "Privileged": config["Privileged"] or None})
    if config["Privileged"] or config["User"]:
        effective = caps if uid == 0 else []
        process["capabilities"] = {"bounding": caps, "effective": effective, "permitted": effective}
    return process


def _env(base: list[str], container_config: dict, extra: list[str], tty: bool) -> list[str]:
    """The container's environment; TERM follows the exec's TTY; exec's Env wins by key."""
    env = list(base)
    if (
        container_config.get("Tty")
        and not tty
        and "TERM=xterm" not in (container_config.get("Env") or [])
    ):
        env = [e for e in env if e != "TERM=xterm"]
    if tty and not any(e.startswith("TERM=") for e in env):
        env.append("TERM=xterm")
    for entry in extra:
        key = entry.split("=", 1)[0]
        env = [e for e in env if e.split("=", 1)[0] != key]
        env.append(entry)
    return env


async def start(engine, exec_id: str, *, detach: bool, tty: bool | None = None) -> Started:
    """Run the session's process; with `detach` its stdio is /dev/null."""
    session, record = _claim(engine, exec_id)
    config = session.config
    if tty is not None:
        config["Tty"] = tty
    files = _files(engine, session)
    session.running = True
    _publish(engine, record, f"exec_start: {session.command_text}", execID=session.id)
    try:
        process = _process_spec(engine, record, config, config["Tty"])
        files["process"].write_text(json.dumps(process))
        if config["Tty"]:
            return await _start_tty(engine, session, record, files, detach)
        return await _start_pipes(engine, session, record, files, detach)
    except BaseException:
        _finish(engine, session, _EXEC_FAILED, files)
        raise


def _runtime_exec(engine, record: dict, files: dict[str, Path], *flags: str) -> list[str]:
    return engine.runtime_argv(
        record,
        "--log",
        str(files["log"]),
        "--log-format",
        "json",
        "exec",
        *flags,
        "--process",
        str(files["process"]),
        "--pid-file",
        str(files["pid"]),
        record["Id"],
    )


async def _start_pipes(engine, session, record, files, detach: bool) -> Started:
    config = session.config
    pipe, null = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
    child = await asyncio.create_subprocess_exec(
        *_runtime_exec(engine, record, files),
        stdin=pipe if config["AttachStdin"] and not detach else null,
        stdout=pipe if config["AttachStdout"] and not detach else null,
        stderr=pipe if config["AttachStderr"] and not detach else null,
    )
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    readers = [
        asyncio.create_task(_read_into(stream, number, queue))
        for stream, number in ((child.stdout, protocol.STDOUT), (child.stderr, protocol.STDERR))
        if stream is not None
    ]
    session.tasks.append(
        asyncio.create_task(_reap_pipes(engine, session, child, readers, queue, files))
    )
    return Started(session, child.stdin, _drain_queue(queue))


async def _read_into(stream: asyncio.StreamReader, number: int, queue: asyncio.Queue) -> None:
    while chunk := await stream.read(65536):
        await queue.put(protocol.frame(number, chunk))


async def _drain_queue(queue: asyncio.Queue) -> AsyncIterator[bytes]:
    while (chunk := await queue.get()) is not None:
        yield chunk


async def _reap_pipes(engine, session, child, readers, queue, files) -> None:
    code = await child.wait()
    if readers:
        # A background child of the process may hold the pipes: stop reading soon after.
        _, pending = await asyncio.wait(readers, timeout=_DRAIN_AFTER_EXIT)
        for task in pending:
            task.cancel()
    await queue.put(None)
    _finish(engine, session, _status(code, files), files)


async def _start_tty(engine, session, record, files, detach: bool) -> Started:
    files["console"].unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.setblocking(False)
    try:
        listener.bind(str(files["console"]))
        listener.listen(1)
        waiter = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dockyard.engine.exec_waiter",
            str(files["pid"]),
            *_runtime_exec(engine, record, files, "-d", "--console-socket", str(files["console"])),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        master = await _receive_master(listener, waiter)
    finally:
        listener.close()
        files["console"].unlink(missing_ok=True)
    if master is None:
        _, errors = await waiter.communicate()
        raise EngineError(_runtime_error(files) or errors.decode(errors="replace").strip())
    session.master = master
    size = record["HostConfig"].get("ConsoleSize") or [0, 0]
    if size[0] and size[1]:
        await resize(engine, session.id, size[0], size[1])
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: _PtyProtocol(reader), os.fdopen(os.dup(master), "rb", 0))
    stdin = None
    if session.config["AttachStdin"] and not detach:
        transport, protocol_ = await loop.connect_write_pipe(
            lambda: asyncio.streams.FlowControlMixin(), os.fdopen(os.dup(master), "wb", 0)
        )
        stdin = asyncio.StreamWriter(transport, protocol_, None, loop)
    output = _tty_output(reader)
    if detach:  # read (so the process never blocks on a full pty) and dropped
        session.tasks.append(asyncio.create_task(_consume(output)))
    session.tasks.append(asyncio.create_task(_reap_tty(engine, session, waiter, files)))
    return Started(session, stdin, output)


async def _receive_master(listener: socket.socket, waiter) -> int | None:
    """The pty master the runtime sends, or None if the runtime exited without one."""
    loop = asyncio.get_running_loop()
    accept = asyncio.ensure_future(loop.sock_accept(listener))
    exited = asyncio.ensure_future(waiter.wait())
    await asyncio.wait({accept, exited}, return_when=asyncio.FIRST_COMPLETED)
    if not accept.done():
        accept.cancel()
        return None
    exited.cancel()
    connection, _ = accept.result()
    with connection:
        connection.setblocking(True)
        _, fds, _, _ = await asyncio.to_thread(socket.recv_fds, connection, 4096, 1)
    return fds[0] if fds else None


class _PtyProtocol(asyncio.StreamReaderProtocol):
    """A pty master reports the other side's close as EIO. Passed on as an error, it would
    make the reader drop output still buffered (StreamReader raises before it returns data),
    so it ends the stream like EOF instead."""

    def connection_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, OSError) and exc.errno == errno.EIO:
            exc = None
        super().connection_lost(exc)


async def _tty_output(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while chunk := await reader.read(65536):
        yield chunk


async def _consume(output: AsyncIterator[bytes]) -> None:
    async for _ in output:
        pass


async def _reap_tty(engine, session, waiter, files) -> None:
    await waiter.communicate()
    _finish(engine, session, _status(waiter.returncode, files), files)


def _status(code: int, files: dict[str, Path]) -> int:
    """The process's exit status, or Docker's 126 when the runtime could not start it."""
    if code == 255 and _runtime_error(files):
        return _EXEC_FAILED
    return code if code >= 0 else 128 - code


def _runtime_error(files: dict[str, Path]) -> str:
    try:
        lines = files["log"].read_text().splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("level") == "error":
                return str(entry.get("msg", ""))
    return ""


def _finish(engine, session: ExecSession, code: int, files: dict[str, Path]) -> None:
    if not session.pid:
        session.pid = _read_pid(files["pid"])
    session.running = False
    session.exit_code = code
    session.finished = time.time()
    if session.master is not None:
        os.close(session.master)
        session.master = None
    for path in files.values():
        path.unlink(missing_ok=True)
    session.exited.set()
    try:
        record = engine.containers.get(session.container_id)
    except NotFound:
        return
    _publish(engine, record, "exec_die", execID=session.id, exitCode=str(code))


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return 0
