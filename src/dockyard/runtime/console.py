"""Terminal mode: the container gets a pty whose master goes to whoever holds the console
socket (runc's `--console-socket` protocol: one SCM_RIGHTS message carrying the master fd)."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import socket
import struct
import sys
import termios
import tty

from dockyard.runtime import linux


def open_pty_in_container() -> tuple[int, str]:
    """Open a pty from the container's devpts; returns (master fd, slave path)."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    # TIOCSPTLCK=0 unlocks the slave; TIOCGPTN gives its number.
    fcntl.ioctl(master, linux.TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, linux.TIOCGPTN, b"\0" * 4))[0]
    return master, f"/dev/pts/{number}"


def become_console(slave_path: str) -> None:
    """Make the pty slave our controlling terminal and our stdio."""
    slave = os.open(slave_path, os.O_RDWR)
    fcntl.ioctl(slave, linux.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def send_master(console_fd: int, master: int, slave_path: str) -> None:
    with socket.socket(fileno=console_fd) as sock:
        socket.send_fds(sock, [slave_path.encode()], [master])


def receive_master(sock: socket.socket) -> int:
    _, fds, _, _ = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OSError("console socket closed without a pty master")
    return fds[0]


def relay(master: int) -> None:
    """Copy our stdin to the pty and the pty to our stdout until the pty closes."""
    stdin_is_tty = os.isatty(0)
    saved = termios.tcgetattr(0) if stdin_is_tty else None
    if stdin_is_tty:
        tty.setraw(0)
        _copy_winsize(0, master)
        signal.signal(signal.SIGWINCH, lambda *_: _copy_winsize(0, master))
    sources = [master, 0]
    try:
        while True:
            readable, _, _ = select.select(sources, [], [])
            for fd in readable:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if fd == master:
                    if not data:
                        return
                    os.write(1, data)
                elif data:
                    os.write(master, data)
                else:
                    sources.remove(0)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        sys.stdout.flush()


def _copy_winsize(src: int, dst: int) -> None:
    try:
        size = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, termios.TIOCSWINSZ, size)
    except OSError:
        pass
