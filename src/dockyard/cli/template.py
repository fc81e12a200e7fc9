"""A subset of Go's text/template, as `--format` uses it: fields, pipelines, variables,
if/else/range/with, and Docker's functions (json, join, split, upper, lower, title, pad,
truncate) plus Go's builtins (index, len, print, printf, println, eq, ne, lt, le, gt, ge,
and, or, not). Values are Python data shaped like the API's JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class TemplateError(Exception):
    pass


class _NoValue:
    def __str__(self) -> str:
        return "<no value>"


NO_VALUE = _NoValue()

# ---------------------------------------------------------------- lexing

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<field>(?:\$[A-Za-z0-9_]*)?(?:\.[A-Za-z0-9_]+)+|\.|\$[A-Za-z0-9_]*)
    | (?P<decl>:=|=)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[|(),])
    )""",
    re.VERBOSE,
)


def _tokens(source: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    source = source.rstrip()
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if not match or match.end() == pos:
            raise TemplateError(f"unexpected {source[pos:].strip()[:10]!r} in command")
        pos = match.end()
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
    return out


def _split(text: str) -> list[tuple[str, str]]:
    """Text and action pieces, with {{- and -}} trimming applied."""
    pieces: list[tuple[str, str]] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            pieces.append(("text", text[pos:]))
            return pieces
        literal = text[pos:start]
        inner_start = start + 2
        if text.startswith("- ", inner_start) or text.startswith("-\t", inner_start):
            literal = literal.rstrip()
            inner_start += 1
        end = text.find("}}", inner_start)
        if end < 0:
            raise TemplateError("unclosed action")
        inner = text[inner_start:end]
        after = end + 2
        if inner.endswith(" -") or inner.endswith("\t-"):
            inner = inner[:-1]
            while after < len(text) and text[after].isspace():
                after += 1
        pieces.append(("text", literal))
        stripped = inner.strip()
        if not stripped.startswith("/*"):
            pieces.append(("action", stripped))
        pos = after


# ---------------------------------------------------------------- parsing


@dataclass
class _Pipeline:
    decl: list[str]
    commands: list[list[tuple[str, Any]]]


@dataclass
class _Block:
    kind: str  # if, range, with
    pipeline: _Pipeline
    body: list[Any] = field(default_factory=list)
    orelse: list[Any] = field(default_factory=list)


def _parse_pipeline(tokens: list[tuple[str, str]]) -> _Pipeline:
    decl: list[str] = []
    for k in range(len(tokens)):
        if tokens[k][0] == "decl":
            decl = [value for kind, value in tokens[:k] if kind == "field"]
            tokens = tokens[k + 1 :]
            break
    pipeline, rest = _parse_commands(tokens, 0)
    if rest != len(tokens):
        raise TemplateError(f"unexpected {tokens[rest][1]!r} in operand")
    return _Pipeline(decl, pipeline)


def _parse_commands(tokens: list[tuple[str, str]], i: int) -> tuple[list[list[Any]], int]:
    commands: list[list[Any]] = [[]]
    while i < len(tokens):
        kind, value = tokens[i]
        if kind == "punct" and value == ")":
            break
        i += 1
        if kind == "punct" and value == "|":
            commands.append([])
        elif kind == "punct" and value == "(":
            inner, i = _parse_commands(tokens, i)
            if i >= len(tokens) or tokens[i][1] != ")":
                raise TemplateError("unclosed left paren")
            i += 1
            operand: tuple[str, Any] = ("sub", _Pipeline([], inner))
            if i < len(tokens) and tokens[i][0] == "field" and tokens[i][1].startswith("."):
                operand = ("chain", (operand, tokens[i][1]))
                i += 1
            commands[-1].append(operand)
        elif kind == "str":
            commands[-1].append(("lit", json.loads(value)))
        elif kind == "raw":
            commands[-1].append(("lit", value[1:-1]))
        elif kind == "num":
            commands[-1].append(("lit", float(value) if "." in value else int(value)))
        elif kind == "ident" and value in ("true", "false"):
            commands[-1].append(("lit", value == "true"))
        elif kind == "ident" and value == "nil":
            commands[-1].append(("lit", None))
        else:
            commands[-1].append((kind, value))
    if any(not c for c in commands):
        raise TemplateError("missing command in pipeline")
    return commands, i


def _parse(pieces: list[tuple[str, str]]) -> list[Any]:
    root: list[Any] = []
    stack: list[tuple[_Block, list[Any] | None]] = []
    current = root
    for kind, value in pieces:
        if kind == "text":
            if value:
                current.append(value)
            continue
        tokens = _tokens(value)
        if not tokens:
            raise TemplateError("missing value for command")
        head = tokens[0][1] if tokens[0][0] == "ident" else ""
        if head in ("if", "range", "with"):
            block = _Block(head, _parse_pipeline(tokens[1:]))
            current.append(block)
            stack.append((block, current))
            current = block.body
        elif head == "else":
            if not stack:
                raise TemplateError("unexpected {{else}}")
            block = stack[-1][0]
            current = block.orelse
            if len(tokens) > 1 and tokens[1][1] in ("if", "with"):
                # {{else if x}} is an if nested in the else branch, closed by the same {{end}}
                nested = _Block(tokens[1][1], _parse_pipeline(tokens[2:]))
                current.append(nested)
                stack.append((nested, None))  # closed together with its outer block
                current = nested.body
        elif head == "end":
            if not stack:
                raise TemplateError("unexpected {{end}}")
            while True:
                block, parent = stack.pop()
                if parent is not None:
                    break
            current = parent
        else:
            current.append(_parse_pipeline(tokens))
    if stack:
        raise TemplateError("unexpected EOF")
    return root


# ---------------------------------------------------------------- values


def go_str(value: Any) -> str:
    """fmt's %v for JSON-shaped values."""
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def _truth(value: Any) -> bool:
    if value is NO_VALUE or value is None:
        return False
    if isinstance(value, bool | int | float | str | list | dict | tuple):
        return bool(value)
    return True


def _json(value: Any) -> str:
    if value is NO_VALUE:
        value = None
    if isinstance(value, dict):  # a formatting context: its methods (`.Label "k"`) are not data
        value = {k: v for k, v in value.items() if not callable(v)}
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _missing(mapping: dict[str, Any]) -> Any:
    """A missing key: "" in a map of strings (Labels, as Docker's typed structs give), else
    Go's <no value>."""
    if all(isinstance(v, str) for v in mapping.values()):
        return ""
    return NO_VALUE


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if value is None or value is NO_VALUE:
            return NO_VALUE
        if isinstance(value, dict):
            value = value[key] if key in value else _missing(value)
        elif isinstance(value, list | tuple | str):
            if not isinstance(key, int) or not 0 <= key < len(value):
                raise TemplateError(f"error calling index: index out of range: {key}")
            value = value[key]
        else:
            raise TemplateError(f"can't index item of type {type(value).__name__}")
    return value


def _printf(fmt: str, *args: Any) -> str:
    converted = iter(args)

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        value = next(converted, NO_VALUE)
        verb = match.group(2)
        if verb == "q":
            return json.dumps(go_str(value))
        spec = match.group(1) + ("d" if verb == "d" else "s")
        return ("%" + spec) % (int(value) if verb == "d" else go_str(value))

    return re.sub(r"%%|%([-+ 0#]*\d*(?:\.\d+)?)([vsdqt])", one, fmt)


def _compare(op: Callable[[Any, Any], bool]) -> Callable[..., bool]:
    def compare(a: Any, b: Any) -> bool:
        return op(a, b)

    return compare


def _eq(a: Any, *others: Any) -> bool:
    return any(a == b for b in others)


def _and(*args: Any) -> Any:
    for arg in args:
        if not _truth(arg):
            return arg
    return args[-1]


def _or(*args: Any) -> Any:
    for arg in args:
        if _truth(arg):
            return arg
    return args[-1]


def _pad(value: Any, left: int, right: int) -> str:
    return " " * left + go_str(value) + " " * right


def _truncate(value: Any, n: int) -> str:
    return go_str(value)[:n]


def _len(value: Any) -> int:
    if value is None or value is NO_VALUE:
        raise TemplateError("error calling len: len of nil pointer")
    return len(value)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "join": lambda items, sep: sep.join(go_str(i) for i in (items or [])),
    "split": lambda s, sep: s.split(sep),
    "upper": lambda s: go_str(s).upper(),
    "lower": lambda s: go_str(s).lower(),
    "title": lambda s: go_str(s).title(),
    "pad": _pad,
    "truncate": _truncate,
    "index": _index,
    "len": _len,
    "print": lambda *a: "".join(go_str(v) for v in a),
    "println": lambda *a: " ".join(go_str(v) for v in a) + "\n",
    "printf": _printf,
    "eq": _eq,
    "ne": _compare(lambda a, b: a != b),
    "lt": _compare(lambda a, b: a < b),
    "le": _compare(lambda a, b: a <= b),
    "gt": _compare(lambda a, b: a > b),
    "ge": _compare(lambda a, b: a >= b),
    "and": _and,
    "or": _or,
    "not": lambda v: not _truth(v),
}


# ---------------------------------------------------------------- evaluation


class Template:
    def __init__(self, source: str):
        self.source = source
        self.tree = _parse(_split(source))

    def render(self, data: Any) -> str:
        out: list[str] = []
        _run(self.tree, data, {"$": data}, out)
        return "".join(out)


def _run(nodes: list[Any], dot: Any, env: dict[str, Any], out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Pipeline):
            value = _pipeline(node, dot, env)
            if not node.decl:
                out.append(go_str(value))
        else:
            _block(node, dot, env, out)


def _block(block: _Block, dot: Any, env: dict[str, Any], out: list[str]) -> None:
    scope = dict(env)
    if block.kind == "range":
        value = _eval_commands(block.pipeline.commands, dot, scope)
        items: list[tuple[Any, Any]]
        if isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, list | tuple):
            items = list(enumerate(value))
        elif value is None or value is NO_VALUE:
            items = []
        elif isinstance(value, int):
            items = [(i, i) for i in range(value)]
        else:
            raise TemplateError(f"range can't iterate over {go_str(value)}")
        if not items:
            _run(block.orelse, dot, scope, out)
        decl = block.pipeline.decl
        for key, item in items:
            if len(decl) == 1:
                scope[decl[0]] = item
            elif len(decl) == 2:
                scope[decl[0]], scope[decl[1]] = key, item
            _run(block.body, item, scope, out)
        return
    value = _pipeline(block.pipeline, dot, scope)
    if _truth(value):
        _run(block.body, value if block.kind == "with" else dot, scope, out)
    else:
        _run(block.orelse, dot, scope, out)


def _pipeline(pipeline: _Pipeline, dot: Any, env: dict[str, Any]) -> Any:
    value = _eval_commands(pipeline.commands, dot, env)
    for name in pipeline.decl:
        env[name] = value
    return value


def _eval_commands(commands: list[list[Any]], dot: Any, env: dict[str, Any]) -> Any:
    value: Any = NO_VALUE
    for number, command in enumerate(commands):
        extra = [value] if number else []
        value = _command(command, dot, env, extra)
    return value


def _command(command: list[Any], dot: Any, env: dict[str, Any], extra: list[Any]) -> Any:
    kind, head = command[0]
    args = [_operand(op, dot, env) for op in command[1:]] + extra
    if kind == "ident":
        function = FUNCTIONS.get(head)
        if function is None:
            raise TemplateError(f'function "{head}" not defined')
        try:
            return function(*args)
        except TypeError as error:
            raise TemplateError(f"wrong number of args for {head}: {error}") from None
    if kind == "field":
        return _field(head, dot, env, args)
    if args:
        raise TemplateError(f"can't give argument to non-function {head}")
    return _operand(command[0], dot, env)


def _operand(operand: tuple[str, Any], dot: Any, env: dict[str, Any]) -> Any:
    kind, value = operand
    if kind == "lit":
        return value
    if kind == "field":
        return _field(value, dot, env, [])
    if kind == "sub":
        return _eval_commands(value.commands, dot, env)
    if kind == "chain":
        base, path = value
        return _walk(_operand(base, dot, env), path.split(".")[1:], [])
    if kind == "ident":
        function = FUNCTIONS.get(value)
        if function is None:
            raise TemplateError(f'function "{value}" not defined')
        return function()
    raise TemplateError(f"unexpected {value!r}")


def _field(path: str, dot: Any, env: dict[str, Any], args: list[Any]) -> Any:
    if path == ".":
        return dot
    if path.startswith("$"):
        name, _, rest = path.partition(".")
        if name not in env:
            raise TemplateError(f"undefined variable: {name}")
        base = env[name]
        return _walk(base, rest.split(".") if rest else [], args)
    return _walk(dot, path.split(".")[1:], args)


def _walk(value: Any, names: list[str], args: list[Any]) -> Any:
    for n, name in enumerate(names):
        if isinstance(value, dict):
            if name not in value:
                if n == len(names) - 1:
                    return _missing(value)
                raise TemplateError(
                    f'template: :1: executing "" at <.{".".join(names[: n + 1])}>: '
                    f"map has no entry for key {name!r}"
                )
            value = value[name]
        elif value is None or value is NO_VALUE:
            raise TemplateError(f"nil pointer evaluating .{name}")
        else:
            attr = getattr(value, name, NO_VALUE)
            if attr is NO_VALUE:
                raise TemplateError(f"can't evaluate field {name} in type {type(value).__name__}")
            value = attr
        if callable(value):
            value = value(*args) if n == len(names) - 1 else value()
    return value
