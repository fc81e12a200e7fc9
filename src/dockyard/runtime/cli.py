"""`dockyard-runtime`: runc's command line over dockyard.runtime.

Same commands, flags, JSON shapes and exit codes as runc, so the daemon (or containerd, or a
person) can use either runtime on the same OCI bundle.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from types import SimpleNamespace

from dockyard.runtime import state
from dockyard.runtime.argv import Command, Flag, parse
from dockyard.runtime.cgroups import CgroupError
from dockyard.runtime.container import CreateOptions, Runtime, wait_for
from dockyard.runtime.errors import OCIError
from dockyard.runtime.spec import OCI_VERSION

VERSION = "0.1.0"


def _parse_signal(text: str) -> int:
    if text.isdigit():
        return int(text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise OCIError(f"unknown signal {text!r}") from None


_CREATE_FLAGS = [
    Flag("-b --bundle", "str", "."),
    Flag("--console-socket", "str"),
    Flag("--pid-file", "str"),
    Flag("--preserve-fds", "int", 0),
    Flag("--no-pivot"),
    Flag("--no-new-keyring"),
]
GLOBAL_FLAGS = [
    Flag("--root", "str", state.DEFAULT_ROOT),
    Flag("--log", "str"),
    Flag("--log-format", "str", "text", ("text", "json")),
    Flag("--debug"),
    Flag("--systemd-cgroup"),
    Flag("--rootless", "str", "auto"),
    Flag("-v --version"),
    Flag("-h --help"),
]
COMMANDS = [
    Command("create", _CREATE_FLAGS, ["id"]),
    Command("run", [*_CREATE_FLAGS, Flag("-d --detach"), Flag("--keep")], ["id"]),
    Command("start", [], ["id"]),
    Command("state", [], ["id"]),
    Command("pause", [], ["id"]),
    Command("resume", [], ["id"]),
    Command("kill", [Flag("-a --all")], ["id"], {"signal": "SIGTERM"}),
    Command("delete", [Flag("-f --force")], ["id"]),
    Command("ps", [Flag("-f --format", "str", "table", ("table", "json"))], ["id"], rest="ps_args"),
    Command(
        "list",
        [Flag("-f --format", "str", "table", ("table", "json")), Flag("-q --quiet")],
        [],
        aliases=("ls",),
    ),
    Command("spec", [Flag("-b --bundle", "str", "."), Flag("--rootless")], []),
    Command(
        "update",
        [
            Flag("-r --resources", "str"),
            Flag("--memory", "int"),
            Flag("--memory-reservation", "int"),
            Flag("--memory-swap", "int"),
            Flag("--cpu-shares", "int"),
            Flag("--cpu-quota", "int"),
            Flag("--cpu-period", "int"),
            Flag("--cpuset-cpus", "str"),
            Flag("--cpuset-mems", "str"),
            Flag("--pids-limit", "int"),
            Flag("--blkio-weight", "int"),
        ],
        ["id"],
    ),
    Command(
        "exec",
        [
            Flag("--console-socket", "str"),
            Flag("--cwd", "str"),
            Flag("-e --env", "list"),
            Flag("-t --tty"),
            Flag("-u --user", "str"),
            Flag("-g --additional-gids", "intlist"),
            Flag("-p --process", "str"),
            Flag("-d --detach"),
            Flag("--pid-file", "str"),
            Flag("-c --cap", "list"),
            Flag("--no-new-privs"),
            Flag("--preserve-fds", "int", 0),
        ],
        ["id"],
        rest="command",
    ),
]
USAGE = f"""usage: dockyard-runtime [global flags] <command> [flags] [arguments]

A runc-compatible OCI runtime. Commands: {", ".join(c.name for c in COMMANDS)}.
Global flags: --root DIR (default {state.DEFAULT_ROOT}), --log FILE, --log-format text|json."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parse(argv, GLOBAL_FLAGS, COMMANDS)
    except OCIError as error:
        print(f"{error}\n{USAGE}", file=sys.stderr)
        return 1
    if args.help:
        print(USAGE)
        return 0
    if args.version:
        print(f"dockyard-runtime version {VERSION}\nspec: {OCI_VERSION}")
        return 0
    runtime = Runtime(args.root)
    try:
        return _dispatch(runtime, args)
    except (OCIError, OSError, CgroupError) as error:
        if args.verb == "exec":
            # As runc: 255, which the process's own exit status cannot be mistaken for.
            _report(args, f"exec failed: {error}")
            return 255
        _report(args, str(error))
        return 1


def _report(args: SimpleNamespace, message: str) -> None:
    print(message, file=sys.stderr)
    if args.log:
        line = (
            json.dumps({"level": "error", "msg": message, "time": state.now_rfc3339()})
            if args.log_format == "json"
            else f"{state.now_rfc3339()} error: {message}"
        )
        with open(args.log, "a") as f:
            f.write(line + "\n")


def _dispatch(runtime: Runtime, args: SimpleNamespace) -> int:
    command = args.verb
    if command == "create":
        runtime.create(args.id, args.bundle, _create_options(args))
    elif command == "run":
        return _run(runtime, args)
    elif command == "start":
        runtime.start(args.id)
    elif command == "state":
        print(json.dumps(runtime.state(args.id), indent=2))
    elif command == "kill":
        runtime.kill(args.id, _parse_signal(args.signal), args.all)
    elif command == "delete":
        runtime.delete(args.id, args.force)
    elif command == "pause":
        runtime.pause(args.id)
    elif command == "resume":
        runtime.resume(args.id)
    elif command == "ps":
        _ps(runtime, args)
    elif command in ("list", "ls"):
        _list(runtime, args)
    elif command == "spec":
        _spec(args)
    elif command == "update":
        runtime.update(args.id, _resources(args))
    elif command == "exec":
        return _exec(runtime, args)
    return 0


def _create_options(args: SimpleNamespace) -> CreateOptions:
    return CreateOptions(
        console_socket=args.console_socket,
        pid_file=args.pid_file,
        preserve_fds=args.preserve_fds,
    )


def _run(runtime: Runtime, args: SimpleNamespace) -> int:
    from dockyard.runtime.spec import load_bundle

    options = _create_options(args)
    relay_end = None
    terminal = bool(load_bundle(args.bundle)["process"].get("terminal"))
    _check_console(args.console_socket, terminal, args.detach)
    if terminal and not args.console_socket:
        # No one to hand the pty to: we hold it ourselves and relay our own stdio.
        relay_end, options.console_fd = _console_pair()
    record = runtime.create(args.id, args.bundle, options)
    runtime.start(args.id)
    if args.detach:
        return 0
    if relay_end is not None:
        from dockyard.runtime import console

        console.relay(console.receive_master(relay_end))
    status = wait_for(record.pid)
    if not args.keep:
        runtime.delete(args.id, force=True)
    return status


def _exec(runtime: Runtime, args: SimpleNamespace) -> int:
    _, record, _ = runtime.load(args.id)
    if args.process:
        with open(args.process) as f:
            process = json.load(f)
    else:
        if not args.command:
            raise OCIError("exec: no command given")
        process = dict(record.spec["process"])
        process["args"] = args.command
        process["terminal"] = args.tty
        env = list(process.get("env") or [])
        process["env"] = env + args.env
        if args.cwd:
            process["cwd"] = args.cwd
        if args.user:
            uid, _, gid = args.user.partition(":")
            process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
        if args.additional_gids:
            process.setdefault("user", {})["additionalGids"] = args.additional_gids
        if args.cap:
            caps = dict(process.get("capabilities") or {})
            for key in ("bounding", "effective", "permitted", "ambient"):
                caps[key] = list(caps.get(key) or []) + args.cap
            process["capabilities"] = caps
        if args.no_new_privs:
            process["noNewPrivileges"] = True
    _check_console(args.console_socket, bool(process.get("terminal")), args.detach)
    options = CreateOptions(args.console_socket, args.pid_file, args.preserve_fds)
    relay_end = None
    if process.get("terminal") and not args.console_socket:
        relay_end, options.console_fd = _console_pair()
    result = runtime.exec(args.id, process, options, args.detach)
    if args.detach:
        return 0
    return result if relay_end is None else _relay_and_wait(relay_end, result)


def _check_console(console_socket: str | None, terminal: bool, detach: bool) -> None:
    """runc's rules: a console socket only when detaching with a terminal, and a detached
    terminal needs one (otherwise the pty master would be lost)."""
    if console_socket and not (detach and terminal):
        raise OCIError("cannot use console socket if runtime will not detach or allocate tty")
    if terminal and detach and not console_socket:
        raise OCIError("cannot allocate tty if runtime will detach without setting console socket")


def _console_pair():
    """A socketpair standing in for --console-socket: (our end, fd for the runtime)."""
    import socket

    ours, theirs = socket.socketpair()
    return ours, theirs.detach()


def _relay_and_wait(relay_end, status: int) -> int:
    from dockyard.runtime import console

    console.relay(console.receive_master(relay_end))
    return status


def _ps(runtime: Runtime, args: SimpleNamespace) -> None:
    pids = runtime.pids(args.id)
    if args.format == "json":
        print(json.dumps(pids))
        return
    import subprocess

    ps_args = args.ps_args or ["-ef"]
    output = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=True).stdout
    lines = output.splitlines()
    header = lines[0].split()
    pid_column = header.index("PID")
    print(lines[0])
    for line in lines[1:]:
        fields = line.split(None, pid_column + 1)
        pid = fields[pid_column] if len(fields) > pid_column else ""
        if pid.isdigit() and int(pid) in pids:
            print(line)


def _list(runtime: Runtime, args: SimpleNamespace) -> None:
    containers = runtime.list()
    for entry in containers:
        # As runc: `state` leaves owner empty, `list` names the owner of the state directory.
        entry["owner"] = entry["owner"] or _owner_name(os.path.join(runtime.root, entry["id"]))
    if args.quiet:
        for entry in containers:
            print(entry["id"])
    elif args.format == "json":
        print(json.dumps(containers))
    else:
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [
            [c["id"], str(c["pid"]), c["status"], c["bundle"], c["created"], c["owner"]]
            for c in containers
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print(
                "   ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )


def _owner_name(path: str) -> str:
    import pwd

    try:
        uid = os.stat(path).st_uid
    except OSError:
        return ""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def _spec(args: SimpleNamespace) -> None:
    from dockyard.runtime.spec import default_spec

    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise OCIError("File config.json exists. Remove it first.")
    with open(path, "w") as f:
        json.dump(default_spec(), f, indent="\t")
        f.write("\n")


def _resources(args: SimpleNamespace) -> dict:
    if args.resources:
        if args.resources == "-":
            return json.load(sys.stdin)
        with open(args.resources) as f:
            return json.load(f)
    memory = {
        key: value
        for key, value in (
            ("limit", args.memory),
            ("reservation", args.memory_reservation),
            ("swap", args.memory_swap),
        )
        if value is not None
    }
    cpu = {
        key: value
        for key, value in (
            ("shares", args.cpu_shares),
            ("quota", args.cpu_quota),
            ("period", args.cpu_period),
            ("cpus", args.cpuset_cpus),
            ("mems", args.cpuset_mems),
        )
        if value is not None
    }
    resources: dict = {}
    if memory:
        resources["memory"] = memory
    if cpu:
        resources["cpu"] = cpu
    if args.pids_limit is not None:
        resources["pids"] = {"limit": args.pids_limit}
    if args.blkio_weight is not None:
        resources["blockIO"] = {"weight": args.blkio_weight}
    return resources


if __name__ == "__main__":
    sys.exit(main())
