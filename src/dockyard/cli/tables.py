"""Docker's `--format` handling: `table` (Go tabwriter layout), `table <tmpl>`, `json`, or a
template per item."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dockyard.cli.template import Template

# Docker's formatter: tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
MIN_WIDTH, PADDING = 10, 3


def tabwrite(text: str, min_width: int = MIN_WIDTH, padding: int = PADDING) -> str:
    """Go's text/tabwriter for uniform tables: tab-terminated cells padded to the widest
    cell of their column plus padding (at least min_width); the text after the last tab of
    a line is not aligned."""
    lines = text.split("\n")
    rows = [line.split("\t") for line in lines]
    out: list[str] = []
    start = 0
    while start < len(rows):
        # a block: consecutive lines with the same number of cells
        end = start
        while end < len(rows) and len(rows[end]) == len(rows[start]):
            end += 1
        block = rows[start:end]
        widths = [
            max(min_width, *(len(row[c]) + padding for row in block))
            for c in range(len(block[0]) - 1)
        ]
        for row in block:
            cells = [cell.ljust(widths[c]) for c, cell in enumerate(row[:-1])]
            out.append("".join(cells) + row[-1])
        start = end
    return "\n".join(out)


def render(
    items: list[Mapping[str, Any]],
    fmt: str,
    headers: Mapping[str, str],
    default_table: str,
) -> str:
    """All items in one `--format`. headers maps each field to its column title."""
    if fmt in ("", "table"):
        fmt = "table " + default_table
    if fmt == "json":
        fmt = "{{json .}}"
    if fmt.startswith("table"):
        template = Template(fmt[len("table") :].lstrip(" "))
        header = template.render(_header_context(headers))
        body = "".join(template.render(item) + "\n" for item in items)
        return tabwrite(header + "\n" + body)
    template = Template(fmt)
    return "".join(template.render(item) + "\n" for item in items)


def _header_context(headers: Mapping[str, str]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for key, title in headers.items():
        context[key] = _titled(title)
    context.setdefault("Label", label_header)
    return context


def label_header(name: str) -> str:
    """`{{.Label "com.example.some-key"}}` heads its column "some key", as Docker does."""
    return name.split(".")[-1].replace("-", " ").replace("_", " ")


def _titled(title: str) -> Callable[..., str]:
    # a field the template may call with arguments (`.Label "k"`) still heads its column
    def header(*_args: Any) -> str:
        return title

    return header
