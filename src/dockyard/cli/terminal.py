"""The local end of an attached stream: raw terminal mode, window size, stdin -> socket,
socket -> stdout/stderr."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import termios
import threading
import tty
from collections.abc import Callable, Iterator

from dockyard.client.streams import STDERR, HijackedStream, output


def size() -> tuple[int, int] | None:
    """(height, width) of the terminal on stdout, if there is one."""
    try:
        columns, lines = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return None
    return lines, columns


@contextlib.contextmanager
def raw_mode(enabled: bool) -> Iterator[None]:
    """Put stdin in raw mode while a TTY session runs, restore it after."""
    if not enabled or not os.isatty(sys.stdin.fileno()):
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)  # not the default TCSAFLUSH: keep what was typed ahead
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def on_resize(resize: Callable[[int, int], None], enabled: bool) -> Iterator[None]:
    """Send the window size now and on every SIGWINCH."""
    if not enabled or size() is None:
        yield
        return

    def handler(_signum: int, _frame: object) -> None:
        current = size()
        if current:
            with contextlib.suppress(Exception):
                resize(*current)

    previous = signal.signal(signal.SIGWINCH, handler)
    handler(0, None)
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)


def _pump_stdin(stream: HijackedStream) -> None:
    fd = sys.stdin.fileno()
    try:
        while True:
            data = os.read(fd, 32768)
            if not data:
                break
            stream.send(data)
    except OSError:
        pass
    finally:
        stream.close_write()


def pump(stream: HijackedStream, is_tty: bool, send_stdin: bool) -> None:
    """Copy stdin to the stream (half-closing at EOF) and the stream to stdout/stderr until
    the daemon ends it."""
    if send_stdin:
        threading.Thread(target=_pump_stdin, args=(stream,), daemon=True).start()
    stdout, stderr = sys.stdout.buffer, sys.stderr.buffer
    try:
        for kind, payload in output(stream.reader, is_tty):
            target = stderr if kind == STDERR else stdout
            target.write(payload)
            target.flush()
    except OSError:
        pass
    finally:
        stream.close()
