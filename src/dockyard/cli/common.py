"""Helpers shared by commands: ids, names, per-item error reporting, output formats."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

from dockyard.cli.flags import UsageError
from dockyard.cli.template import Template, TemplateError
from dockyard.client import APIError
from dockyard.client.api import ConnectError


def short_id(value: str) -> str:
    """stringid.TruncateID: drop the algorithm, keep 12 hex digits."""
    return value.split(":", 1)[-1][:12]


def natural_key(text: str) -> list:
    """sortorder.NaturalLess, the docker CLI's order: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def ellipsis(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"


def go_quote(text: str) -> str:
    """strconv.Quote for the printable text commands hold."""
    return json.dumps(text, ensure_ascii=False)


def filters(items: list[str]) -> dict[str, dict[str, bool]] | None:
    """--filter k=v (repeatable) in the CLI's map shape."""
    out: dict[str, dict[str, bool]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise UsageError("bad format of filter (expected name=value)")
        out.setdefault(key.strip().lower(), {})[value] = True
    return out or None


def need_args(command: str, args: list[str], minimum: int, maximum: int | None = None) -> None:
    if len(args) < minimum:
        noun = "argument" if minimum == 1 else "arguments"
        exactly = "exactly" if maximum == minimum else "at least"
        raise UsageError(f'"dockyard {command}" requires {exactly} {minimum} {noun}.')
    if maximum is not None and len(args) > maximum:
        raise UsageError(f'"dockyard {command}" requires at most {maximum} argument(s).')


def each(names: Iterable[str], action: Callable[[str], Any]) -> int:
    """Run action per name; report failures on stderr like Docker and exit 1 if any failed."""
    failed = False
    for name in names:
        try:
            action(name)
        except (APIError, ConnectError) as error:
            print(error, file=sys.stderr)
            failed = True
    return 1 if failed else 0


def apply_format(fmt: str, items: list[Any]) -> str:
    """inspect-style --format: the template once per item, one line each."""
    try:
        template = Template(fmt)
        return "".join(template.render(item) + "\n" for item in items)
    except TemplateError as error:
        raise UsageError(f"template parsing error: {error}") from None


def indented_json(items: list[Any]) -> str:
    return json.dumps(items, indent=4, ensure_ascii=False) + "\n"


def confirm(message: str) -> bool:
    sys.stdout.write(f"{message}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")
