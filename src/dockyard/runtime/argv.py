"""A small declarative command-line parser for `dockyard-runtime`.

argparse costs ~25 ms of imports (gettext, locale, shutil) on every start, a sixth of the
time to run a container; runc's command line is small enough to parse with a table.
"""

from __future__ import annotations

from types import SimpleNamespace

from dockyard.runtime.errors import OCIError


class Flag:
    """`kind`: "bool", "str", "int", "list" (repeatable str) or "intlist"."""

    def __init__(self, names: str, kind: str = "bool", default: object = None, choices=()):
        self.names = names.split()
        self.dest = self.names[-1].lstrip("-").replace("-", "_")
        self.kind = kind
        if default is None and kind in ("list", "intlist"):
            default = []
        self.default = False if default is None and kind == "bool" else default
        self.choices = choices


class Command:
    def __init__(
        self,
        name: str,
        flags: list[Flag],
        positionals: list[str],
        optional: dict[str, str] | None = None,
        rest: str | None = None,
        aliases: tuple[str, ...] = (),
    ):
        self.name = name
        self.flags = flags
        self.positionals = positionals
        self.optional = optional or {}  # trailing positionals that may be left out -> default
        self.rest = rest  # everything after the positionals, unparsed (exec's command)
        self.aliases = aliases


def _defaults(flags: list[Flag], out: SimpleNamespace) -> None:
    for flag in flags:
        setattr(out, flag.dest, list(flag.default) if flag.kind.endswith("list") else flag.default)


def _take_flags(argv: list[str], flags: list[Flag], out: SimpleNamespace) -> list[str]:
    """Parse leading flags into `out`; returns the arguments left (from the first positional)."""
    by_name = {name: flag for flag in flags for name in flag.names}
    index = 0
    while index < len(argv) and argv[index].startswith("-") and argv[index] != "-":
        word = argv[index]
        index += 1
        if word == "--":
            break
        name, has_value, value = word.partition("=")
        flag = by_name.get(name)
        if flag is None:
            raise OCIError(f"flag provided but not defined: {name}")
        if flag.kind == "bool":
            setattr(out, flag.dest, value.lower() != "false" if has_value else True)
            continue
        if not has_value:
            if index >= len(argv):
                raise OCIError(f"flag needs an argument: {name}")
            value = argv[index]
            index += 1
        if flag.choices and value not in flag.choices:
            raise OCIError(f"invalid value {value!r} for {name}: one of {', '.join(flag.choices)}")
        if flag.kind in ("int", "intlist"):
            try:
                converted: object = int(value)
            except ValueError:
                raise OCIError(f"invalid value {value!r} for {name}: not a number") from None
        else:
            converted = value
        if flag.kind.endswith("list"):
            getattr(out, flag.dest).append(converted)
        else:
            setattr(out, flag.dest, converted)
    return argv[index:]


def _interspersed(argv: list[str], flags: list[Flag], out: SimpleNamespace) -> list[str]:
    """The positionals of `argv`, its flags parsed wherever they are: runc's CLI library
    moves flags after the arguments to the front ("create ID --bundle DIR"). Not for exec,
    whose command's own flags follow the id."""
    positionals: list[str] = []
    while argv:
        if argv[0] == "--":
            return positionals + argv[1:]
        positionals.append(argv[0])
        argv = _take_flags(argv[1:], flags, out)
    return positionals


def parse(argv: list[str], global_flags: list[Flag], commands: list[Command]) -> SimpleNamespace:
    out = SimpleNamespace()
    _defaults(global_flags, out)
    rest = _take_flags(argv, global_flags, out)
    if getattr(out, "help", False) or getattr(out, "version", False):
        return out
    if not rest:
        raise OCIError("no command given; commands: " + ", ".join(c.name for c in commands))
    table = {name: c for c in commands for name in (c.name, *c.aliases)}
    command = table.get(rest[0])
    if command is None:
        raise OCIError(f"unknown command {rest[0]!r}")
    out.verb = command.name
    _defaults(command.flags, out)
    rest = _take_flags(rest[1:], command.flags, out)
    if command.rest is None:
        rest = _interspersed(rest, command.flags, out)
    for name in command.positionals:
        if not rest:
            raise OCIError(f'"{command.name}" requires a {name} argument')
        setattr(out, name, rest.pop(0))
    for name, default in command.optional.items():
        setattr(out, name, rest.pop(0) if rest else default)
    if command.rest is not None:
        setattr(out, command.rest, rest)
    elif rest:
        raise OCIError(f'"{command.name}": unexpected arguments {" ".join(rest)}')
    return out
