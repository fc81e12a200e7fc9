"""Docker-style (pflag) flag parsing: `--name=v`, `--name v`, `-abc`, `-e X`, repeated lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BOOL, VALUE, LIST = "bool", "value", "list"
_TRUE = {"true", "1", "t", "T", "TRUE", "True"}
_FALSE = {"false", "0", "f", "F", "FALSE", "False"}


class UsageError(Exception):
    """Bad flags or arguments: Docker exits 125 for these, with a hint to --help."""


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]  # "--memory", "-m"
    kind: str = BOOL
    default: Any = None

    @property
    def dest(self) -> str:
        long = next((n for n in self.names if n.startswith("--")), self.names[0])
        return long.lstrip("-").replace("-", "_")


def flag(*names: str, kind: str = BOOL, default: Any = None) -> Flag:
    if default is None:
        default = {BOOL: False, LIST: []}.get(kind)
    return Flag(names, kind, default)


@dataclass
class Parsed:
    values: dict[str, Any]
    args: list[str] = field(default_factory=list)
    given: set[str] = field(default_factory=set)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def parse(flags: list[Flag], argv: list[str], interspersed: bool = True) -> Parsed:
    """Parse argv against flags. With interspersed=False (run, exec), the first positional
    ends the flags: the rest is the container's command, whatever it looks like."""
    by_name = {name: f for f in flags for name in f.names}
    result = Parsed({f.dest: _copy(f.default) for f in flags})
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            result.args.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            result.args.append(arg)
            if not interspersed:
                result.args.extend(argv[i:])
                break
            continue
        if arg.startswith("--"):
            name, eq, inline = arg.partition("=")
            f = by_name.get(name)
            if f is None:
                raise UsageError(f"unknown flag: {name}")
            i = _take(result, f, name, inline if eq else None, argv, i)
            continue
        # Shorthands: -itd, -e X, -eX, -e=X
        shorts = arg[1:]
        j = 0
        while j < len(shorts):
            name = "-" + shorts[j]
            f = by_name.get(name)
            if f is None:
                raise UsageError(f"unknown shorthand flag: {shorts[j]!r} in {arg}")
            rest = shorts[j + 1 :]
            if f.kind == BOOL:
                if rest.startswith("="):
                    _set(result, f, name, rest[1:])
                    break
                _set(result, f, name, "true")
                j += 1
                continue
            i = _take(result, f, name, rest.removeprefix("=") if rest else None, argv, i)
            break
    return result


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _take(result: Parsed, f: Flag, name: str, inline: str | None, argv: list[str], i: int) -> int:
    if inline is None and f.kind != BOOL:
        if i >= len(argv):
            raise UsageError(f"flag needs an argument: {name}")
        inline = argv[i]
        i += 1
    _set(result, f, name, "true" if inline is None else inline)
    return i


def _set(result: Parsed, f: Flag, name: str, value: str) -> None:
    result.given.add(f.dest)
    if f.kind == BOOL:
        if value not in _TRUE | _FALSE:
            raise UsageError(
                f'invalid argument "{value}" for "{name}" flag: strconv.ParseBool: '
                f'parsing "{value}": invalid syntax'
            )
        result.values[f.dest] = value in _TRUE
    elif f.kind == LIST:
        result.values[f.dest].append(value)
    else:
        result.values[f.dest] = value
