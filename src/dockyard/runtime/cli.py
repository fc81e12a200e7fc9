"""`dockyard-runtime`: runc's command line over dockyard.runtime.

Same commands, flags, JSON shapes and exit codes as runc, so the daemon (or containerd, or a
person) can use either runtime on the same OCI bundle.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from dockyard.runtime import state
from dockyard.runtime.container import CreateOptions, Runtime, wait_for
from dockyard.runtime.errors import OCIError

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


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dockyard-runtime", description=__doc__)
    parser.add_argument("--root", default=str(state.DEFAULT_ROOT), help="state directory")
    parser.add_argument("--log", help="also write errors to this file")
    parser.add_argument("--log-format", default="text", choices=["text", "json"])
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--systemd-cgroup", action="store_true")
    parser.add_argument("--rootless", default="auto")
    parser.add_argument("-v", "--version", action="version", version=f"dockyard-runtime {VERSION}")
    commands = parser.add_subparsers(dest="verb", required=True)

    def creating(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("-b", "--bundle", default=".")
        sub.add_argument("--console-socket")
        sub.add_argument("--pid-file")
        sub.add_argument("--preserve-fds", type=int, default=0)
        sub.add_argument("--no-pivot", action="store_true")
        sub.add_argument("--no-new-keyring", action="store_true")
        sub.add_argument("id")
        return sub

    creating("create", "create a container, stopped before the user's program")
    run = creating("run", "create and start a container, and wait for it")
    run.add_argument("-d", "--detach", action="store_true")
    run.add_argument("--keep", action="store_true", help="keep the container after it exits")
    for name in ("start", "state", "pause", "resume"):
        commands.add_parser(name).add_argument("id")
    kill = commands.add_parser("kill")
    kill.add_argument("-a", "--all", action="store_true")
    kill.add_argument("id")
    kill.add_argument("signal", nargs="?", default="SIGTERM")
    delete = commands.add_parser("delete")
    delete.add_argument("-f", "--force", action="store_true")
    delete.add_argument("id")
    ps = commands.add_parser("ps")
    ps.add_argument("-f", "--format", default="table", choices=["table", "json"])
    ps.add_argument("id")
    ps.add_argument("ps_args", nargs=argparse.REMAINDER)
    listing = commands.add_parser("list", aliases=["ls"])
    listing.add_argument("-f", "--format", default="table", choices=["table", "json"])
    listing.add_argument("-q", "--quiet", action="store_true")
    spec = commands.add_parser("spec")
    spec.add_argument("-b", "--bundle", default=".")
    spec.add_argument("--rootless", action="store_true")
    update = commands.add_parser("update")
    update.add_argument("-r", "--resources", help="resources JSON file, - for stdin")
    update.add_argument("--memory", type=int)
    update.add_argument("--memory-reservation", type=int)
    update.add_argument("--memory-swap", type=int)
    update.add_argument("--cpu-shares", type=int)
    update.add_argument("--cpu-quota", type=int)
    update.add_argument("--cpu-period", type=int)
    update.add_argument("--cpuset-cpus")
    update.add_argument("--cpuset-mems")
    update.add_argument("--pids-limit", type=int)
    update.add_argument("--blkio-weight", type=int)
    update.add_argument("id")
    execute = commands.add_parser("exec")
    execute.add_argument("--console-socket")
    execute.add_argument("--cwd")
    execute.add_argument("-e", "--env", action="append", default=[])
    execute.add_argument("-t", "--tty", action="store_true")
    execute.add_argument("-u", "--user")
    execute.add_argument("-g", "--additional-gids", action="append", type=int, default=[])
    execute.add_argument("-p", "--process")
    execute.add_argument("-d", "--detach", action="store_true")
    execute.add_argument("--pid-file")
    execute.add_argument("-c", "--cap", action="append", default=[])
    execute.add_argument("--no-new-privs", action="store_true")
    execute.add_argument("--preserve-fds", type=int, default=0)
    execute.add_argument("id")
    execute.add_argument("command", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    runtime = Runtime(args.root)
    try:
        return _dispatch(runtime, args)
    except OCIError as error:
        _report(args, str(error))
        return 1
    except OSError as error:
        _report(args, f"{error}")
        return 1


def _report(args: argparse.Namespace, message: str) -> None:
    print(message, file=sys.stderr)
    if args.log:
        line = (
            json.dumps({"level": "error", "msg": message, "time": state.now_rfc3339()})
            if args.log_format == "json"
            else f"{state.now_rfc3339()} error: {message}"
        )
        with open(args.log, "a") as f:
            f.write(line + "\n")


def _dispatch(runtime: Runtime, args: argparse.Namespace) -> int:
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


def _create_options(args: argparse.Namespace) -> CreateOptions:
    return CreateOptions(
        console_socket=args.console_socket,
        pid_file=args.pid_file,
        preserve_fds=args.preserve_fds,
    )


def _run(runtime: Runtime, args: argparse.Namespace) -> int:
    from dockyard.runtime import console
    from dockyard.runtime.spec import load_bundle

    options = _create_options(args)
    relay_end = None
    if load_bundle(args.bundle)["process"].get("terminal") and not args.console_socket:
        # No one to hand the pty to: we hold it ourselves and relay our own stdio.
        relay_end, options.console_fd = _console_pair()
    record = runtime.create(args.id, args.bundle, options)
    runtime.start(args.id)
    if args.detach:
        return 0
    if relay_end is not None:
        console.relay(console.receive_master(relay_end))
    status = wait_for(record.pid)
    if not args.keep:
        runtime.delete(args.id, force=True)
    return status


def _exec(runtime: Runtime, args: argparse.Namespace) -> int:
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
    options = CreateOptions(args.console_socket, args.pid_file, args.preserve_fds)
    relay_end = None
    if process.get("terminal") and not args.console_socket and not args.detach:
        relay_end, options.console_fd = _console_pair()
    result = runtime.exec(args.id, process, options, args.detach)
    if args.detach:
        return 0
    return result if relay_end is None else _relay_and_wait(relay_end, result)


def _console_pair():
    """A socketpair standing in for --console-socket: (our end, fd for the runtime)."""
    import socket

    ours, theirs = socket.socketpair()
    return ours, theirs.detach()


def _relay_and_wait(relay_end, status: int) -> int:
    from dockyard.runtime import console

    console.relay(console.receive_master(relay_end))
    return status


def _ps(runtime: Runtime, args: argparse.Namespace) -> None:
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


def _list(runtime: Runtime, args: argparse.Namespace) -> None:
    containers = runtime.list()
    if args.quiet:
        for entry in containers:
            print(entry["id"])
    elif args.format == "json":
        print(json.dumps(containers))
    else:
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [
            [c["id"], str(c["pid"]), c["status"], c["bundle"], c["created"], c["owner"] or "root"]
            for c in containers
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print(
                "   ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )


def _spec(args: argparse.Namespace) -> None:
    from dockyard.runtime.spec import default_spec

    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise OCIError("File config.json exists. Remove it first.")
    with open(path, "w") as f:
        json.dump(default_spec(), f, indent="\t")
        f.write("\n")


def _resources(args: argparse.Namespace) -> dict:
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
