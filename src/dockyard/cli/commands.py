"""`dockyard <command>`: global flags, the command table, errors -> Docker's exit codes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import cached_property
from importlib import import_module

from dockyard.cli.flags import VALUE, UsageError, flag, parse
from dockyard.client import APIError, Client
from dockyard.client.api import ConnectError
from dockyard.client.autostart import log_path, should_autostart, start_daemon
from dockyard.client.transport import DEFAULT_HOST, configured_host, parse_host, tls_context

PROG = "dockyard"

GLOBAL_FLAGS = [
    flag("-H", "--host", kind=VALUE),
    flag("-D", "--debug"),
    flag("-l", "--log-level", kind=VALUE),
    flag("--tls"),
    flag("--tlsverify"),
    flag("--tlscacert", kind=VALUE),
    flag("--tlscert", kind=VALUE),
    flag("--tlskey", kind=VALUE),
    flag("--config", kind=VALUE),
    flag("-c", "--context", kind=VALUE),
]

# command -> "module:function"; groups map their subcommands the same way
CONTAINER = {
    "run": "running:run",
    "create": "running:create",
    "start": "running:start",
    "attach": "running:attach",
    "exec": "running:exec_",
    "ls": "containers:ps",
    "list": "containers:ps",
    "ps": "containers:ps",
    "stop": "containers:stop",
    "restart": "containers:restart",
    "kill": "containers:kill",
    "rm": "containers:rm",
    "remove": "containers:rm",
    "pause": "containers:pause",
    "unpause": "containers:unpause",
    "rename": "containers:rename",
    "wait": "containers:wait",
    "port": "containers:port",
    "top": "containers:top",
    "diff": "containers:diff",
    "export": "containers:export",
    "commit": "containers:commit",
    "update": "containers:update",
    "logs": "containers:logs",
    "inspect": "containers:inspect_containers",
    "stats": "containers:stats",
    "cp": "containers:cp",
    "prune": "containers:prune",
}
IMAGE = {
    "ls": "images:images",
    "list": "images:images",
    "inspect": "images:inspect_images",
    "history": "images:history",
    "rm": "images:rmi",
    "remove": "images:rmi",
    "prune": "images:prune",
    "import": "images:import_",
    "save": "images:save",
    "load": "images:load",
    "bootstrap": "images:bootstrap",
    "tag": "images:tag",
    "pull": "images:pull",
}
VOLUME = {
    "create": "volumes:create",
    "ls": "volumes:ls",
    "list": "volumes:ls",
    "inspect": "volumes:inspect",
    "rm": "volumes:rm",
    "remove": "volumes:rm",
    "prune": "volumes:prune",
}
NETWORK = {
    "create": "networks:create",
    "ls": "networks:ls",
    "list": "networks:ls",
    "inspect": "networks:inspect",
    "rm": "networks:rm",
    "remove": "networks:rm",
    "prune": "networks:prune",
    "connect": "networks:connect",
    "disconnect": "networks:disconnect",
}
SYSTEM = {
    "df": "system:df",
    "info": "system:info",
    "events": "system:events",
    "prune": "system:prune",
}
TOP = {
    **{k: v for k, v in CONTAINER.items() if k not in ("ls", "list", "remove", "prune")},
    "inspect": "inspect:inspect",
    "images": "images:images",
    "rmi": "images:rmi",
    "tag": "images:tag",
    "save": "images:save",
    "load": "images:load",
    "import": "images:import_",
    "history": "images:history",
    "pull": "images:pull",
    "info": "system:info",
    "version": "system:version",
    "events": "system:events",
}
GROUPS = {
    "container": CONTAINER,
    "image": IMAGE,
    "volume": VOLUME,
    "network": NETWORK,
    "system": SYSTEM,
}


class Exit(Exception):
    """Leave with this status; the message (if any) was printed already or goes to stderr."""

    def __init__(self, code: int, message: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message


class Cli:
    """What every command needs: the daemon client, and the command's name for messages."""

    def __init__(self, host_flag: str | None, tls: bool, command: str):
        self.host_flag = host_flag
        self.tls = tls
        self.command = command

    @cached_property
    def client(self) -> Client:
        configured = configured_host(self.host_flag)
        url = configured or DEFAULT_HOST
        environ = dict(os.environ)
        if self.tls:
            environ.setdefault("DOCKER_TLS", "1")
        client = Client(parse_host(url, tls_context(environ)), url)
        if should_autostart(configured, os.geteuid()) and not client.ping(timeout=2):
            log = log_path()
            print(f"Starting the dockyard daemon (log: {log})...", file=sys.stderr)
            start_daemon(client.host, log)
        return client

    def out(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()


def _resolve(argv: list[str]) -> tuple[str, Callable[[Cli, list[str]], int], list[str]]:
    if not argv:
        raise UsageError("missing command")
    name, rest = argv[0], argv[1:]
    table = TOP
    if name in GROUPS:
        if not rest:
            raise UsageError(f"{PROG} {name} requires a subcommand")
        table, name, rest = GROUPS[name], f"{name} {rest[0]}", rest[1:]
    target = table.get(name.split()[-1])
    if target is None:
        raise UsageError(f"unknown command: {PROG} {name}")
    module, function = target.split(":")
    return name, getattr(import_module(f"dockyard.cli.{module}"), function), rest


def run_cli(argv: list[str]) -> int:
    command = "run"
    try:
        options = parse(GLOBAL_FLAGS, argv, interspersed=False)
        if options.args[:1] == ["--version"] or options.args[:1] == ["-v"]:
            options.args[0] = "version"
        command, handler, rest = _resolve(options.args)
        cli = Cli(options.host, options.tls or options.tlsverify, command)
        return handler(cli, rest)
    except UsageError as error:
        print(f"{error}\nSee '{PROG} {command} --help'.", file=sys.stderr)
        return 125
    except Exit as error:
        if error.message:
            print(error.message, file=sys.stderr)
        return error.code
    except (APIError, ConnectError) as error:
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
