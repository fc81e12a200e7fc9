"""Commands that create, start or attach to processes: run, create, start, attach, exec."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

from dockyard.cli import terminal
from dockyard.cli.commands import PROG, Cli, Exit
from dockyard.cli.common import need_args
from dockyard.cli.createflags import CREATE_FLAGS, RUN_FLAGS, create_body, key_values
from dockyard.cli.flags import LIST, VALUE, Parsed, flag, parse
from dockyard.client import APIError
from dockyard.client.api import ConnectError


def start_error_code(message: str) -> int:
    """Docker's exit status for a start that failed: 127 not found, 126 cannot invoke."""
    if any(
        text in message
        for text in (
            "executable file not found",
            "no such file or directory",
            "system cannot find the file specified",
        )
    ):
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


def _fail(command: str, error: Exception, code: int = 125) -> Exit:
    return Exit(code, f"{PROG}: {error}\n\nRun '{PROG} {command} --help' for more information")


def _pull(cli: Cli, image: str) -> None:
    from dockyard.cli.images import pull_image

    print(f"Unable to find image '{image}' locally", file=sys.stderr)
    pull_image(cli, image, sys.stderr)


def _create(cli: Cli, opts: Parsed, command_name: str) -> str:
    need_args(command_name, opts.args, 1)
    image, command = opts.args[0], opts.args[1:]
    body = create_body(opts, image, command)
    if opts.tty and (current := terminal.size()):
        body["HostConfig"]["ConsoleSize"] = list(current)
    params = {"name": opts.name, "platform": opts.platform}
    try:
        if opts.pull == "always":
            _pull(cli, image)
        try:
            result = cli.client.post("/containers/create", params=params, body=body)
        except APIError as error:
            if error.status != 404 or opts.pull == "never" or "image" not in error.message:
                raise
            _pull(cli, image)
            result = cli.client.post("/containers/create", params=params, body=body)
    except (APIError, ConnectError) as error:
        raise _fail(command_name, error) from None
    for warning in result.get("Warnings") or []:
        print(f"WARNING: {warning}", file=sys.stderr)
    if opts.cidfile:
        with open(opts.cidfile, "x") as f:
            f.write(result["Id"])
    return result["Id"]


def create(cli: Cli, argv: list[str]) -> int:
    opts = parse(CREATE_FLAGS, argv, interspersed=False)
    print(_create(cli, opts, cli.command))
    return 0


def _attach_stream(
    cli: Cli,
    container: str,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    detach_keys: str | None = None,
) -> Any:
    params = {
        "stream": True,
        "stdin": stdin or None,
        "stdout": stdout or None,
        "stderr": stderr or None,
        "detachKeys": detach_keys,
    }
    return cli.client.hijack(f"/containers/{container}/attach", params=params)


def _resizer(cli: Cli, path: str) -> Any:
    def resize(height: int, width: int) -> None:
        cli.client.post(path, params={"h": height, "w": width})

    return resize


DETACH_GRACE_SECONDS = 1.0


def _exit_code(response: Any) -> int:
    """The StatusCode of a wait whose headers came before start."""
    data = json.loads(response.read() or b"{}")
    if (data.get("Error") or {}).get("Message"):
        print(f"{PROG}: {data['Error']['Message']}", file=sys.stderr)
    return int(data.get("StatusCode", 125))


def run(cli: Cli, argv: list[str]) -> int:
    opts = parse(RUN_FLAGS, argv, interspersed=False)
    container_id = _create(cli, opts, cli.command)
    client = cli.client
    if opts.detach:
        try:
            client.post(f"/containers/{container_id}/start")
        except (APIError, ConnectError) as error:
            raise _fail(cli.command, error, start_error_code(error.args[0])) from None
        print(container_id)
        return 0
    attach = [a.lower() for a in opts.attach]
    want_stdin = opts.interactive or "stdin" in attach
    want_out = not attach or "stdout" in attach
    want_err = not attach or "stderr" in attach
    stream = _attach_stream(cli, container_id, want_stdin, want_out, want_err, opts.detach_keys)
    condition = "removed" if opts.rm else "next-exit"
    wait_connection, wait_response = client.open(
        "POST", f"/containers/{container_id}/wait", params={"condition": condition}
    )
    try:
        try:
            client.post(f"/containers/{container_id}/start")
        except (APIError, ConnectError) as error:
            stream.close()
            raise _fail(cli.command, error, start_error_code(str(error))) from None
        resize = _resizer(cli, f"/containers/{container_id}/resize")
        with terminal.raw_mode(opts.tty and want_stdin), terminal.on_resize(resize, opts.tty):
            terminal.pump(stream, opts.tty, want_stdin)
        return _exit_code(wait_response)
    finally:
        wait_connection.close()


def start(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [flag("-a", "--attach"), flag("-i", "--interactive"), flag("--detach-keys", kind=VALUE)],
        argv,
    )
    need_args(cli.command, opts.args, 1)
    if not (opts.attach or opts.interactive):
        failed = False
        for name in opts.args:
            try:
                cli.client.post(f"/containers/{cli.client.ref(name)}/start")
                print(name)
            except (APIError, ConnectError) as error:
                print(error, file=sys.stderr)
                failed = True
        if failed:
            raise Exit(1)
        return 0
    if len(opts.args) > 1:
        raise Exit(1, "you cannot start and attach multiple containers at once")
    ref = cli.client.ref(opts.args[0])
    info = cli.client.get(f"/containers/{ref}/json")
    is_tty = bool(info["Config"].get("Tty"))
    want_stdin = opts.interactive and bool(info["Config"].get("OpenStdin"))
    stream = _attach_stream(cli, ref, want_stdin, True, True, opts.detach_keys)
    wait_connection, wait_response = cli.client.open(
        "POST", f"/containers/{ref}/wait", params={"condition": "next-exit"}
    )
    try:
        try:
            cli.client.post(f"/containers/{ref}/start")
        except (APIError, ConnectError) as error:
            stream.close()
            raise Exit(start_error_code(str(error)), str(error)) from None
        resize = _resizer(cli, f"/containers/{ref}/resize")
        with terminal.raw_mode(is_tty and want_stdin), terminal.on_resize(resize, is_tty):
            terminal.pump(stream, is_tty, want_stdin)
        return _exit_code(wait_response)
    finally:
        wait_connection.close()


def attach(cli: Cli, argv: list[str]) -> int:
    opts = parse(
        [flag("--no-stdin"), flag("--sig-proxy", default=True), flag("--detach-keys", kind=VALUE)],
        argv,
    )
    need_args(cli.command, opts.args, 1, 1)
    ref = cli.client.ref(opts.args[0])
    info = cli.client.get(f"/containers/{ref}/json")
    if not info["State"].get("Running"):
        raise Exit(1, "You cannot attach to a stopped container, start it first")
    if info["State"].get("Paused"):
        raise Exit(1, "You cannot attach to a paused container, unpause it first")
    is_tty = bool(info["Config"].get("Tty"))
    want_stdin = not opts.no_stdin and bool(info["Config"].get("OpenStdin"))
    stream = _attach_stream(cli, ref, want_stdin, True, True, opts.detach_keys)
    wait_connection, wait_response = cli.client.open(
        "POST", f"/containers/{ref}/wait", params={"condition": "next-exit"}
    )
    try:
        resize = _resizer(cli, f"/containers/{ref}/resize")
        with terminal.raw_mode(is_tty and want_stdin), terminal.on_resize(resize, is_tty):
            terminal.pump(stream, is_tty, want_stdin)
        if cli.client.get(f"/containers/{ref}/json")["State"].get("Running"):
            # Detached with the detach keys, or the stream ended just before the exit was
            # recorded: a moment for the wait to tell.
            wait_connection.sock.settimeout(DETACH_GRACE_SECONDS)
            try:
                return _exit_code(wait_response)
            except TimeoutError:
                return 0
        return _exit_code(wait_response)
    finally:
        wait_connection.close()


EXEC_FLAGS = [
    flag("-i", "--interactive"),
    flag("-t", "--tty"),
    flag("-d", "--detach"),
    flag("-e", "--env", kind=LIST),
    flag("--env-file", kind=LIST),
    flag("-w", "--workdir", kind=VALUE),
    flag("-u", "--user", kind=VALUE),
    flag("--privileged"),
    flag("--detach-keys", kind=VALUE),
]


def exec_(cli: Cli, argv: list[str]) -> int:
    opts = parse(EXEC_FLAGS, argv, interspersed=False)
    need_args(cli.command, opts.args, 2)
    ref = cli.client.ref(opts.args[0])
    cli.client.get(f"/containers/{ref}/json")
    body = {
        "User": opts.user or "",
        "Privileged": opts.privileged,
        "Tty": opts.tty,
        "AttachStdin": opts.interactive and not opts.detach,
        "AttachStderr": not opts.detach,
        "AttachStdout": not opts.detach,
        "Detach": opts.detach,
        "DetachKeys": opts.detach_keys or "",
        "Env": key_values(opts.env, opts.env_file),
        "WorkingDir": opts.workdir or "",
        "Cmd": opts.args[1:],
    }
    if opts.tty and (current := terminal.size()):
        body["ConsoleSize"] = list(current)
    exec_id = cli.client.post(f"/containers/{ref}/exec", body=body)["Id"]
    if opts.detach:
        cli.client.post(f"/exec/{exec_id}/start", body={"Detach": True, "Tty": opts.tty})
        return 0
    stream = cli.client.hijack(f"/exec/{exec_id}/start", body={"Detach": False, "Tty": opts.tty})
    resize = _resizer(cli, f"/exec/{exec_id}/resize")
    with terminal.raw_mode(opts.tty and opts.interactive), contextlib.ExitStack() as stack:
        stack.enter_context(terminal.on_resize(resize, opts.tty))
        terminal.pump(stream, opts.tty, opts.interactive)
    result = cli.client.get(f"/exec/{exec_id}/json")
    return int(result.get("ExitCode") or 0)
