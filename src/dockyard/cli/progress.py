"""Progress on stderr with rich, only when stderr is a terminal (pipes get clean output)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TransferSpeedColumn,
)


class _Quiet:
    def update(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextlib.contextmanager
def transfer(description: str, total: int | None = None) -> Iterator[Any]:
    """A byte counter: yields `advance(n)`."""
    if not sys.stderr.isatty():
        yield lambda n: None
        return
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


@contextlib.contextmanager
def status(description: str) -> Iterator[Any]:
    """A spinner with a changing line of text: yields an object with `update(text)`."""
    if not sys.stderr.isatty():
        yield _Quiet()
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=None)

        class _Status:
            def update(self, text: str) -> None:
                progress.update(task, description=f"{description}: {text}")

        yield _Status()


class CountingReader:
    """A file whose reads advance a progress counter (load, import uploads)."""

    def __init__(self, f: IO[bytes], advance: Any):
        self.f = f
        self.advance = advance

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n if n and n > 0 else 1 << 20)
        self.advance(len(data))
        return data
