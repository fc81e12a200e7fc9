"""Byte streams from the daemon: JSON lines, multiplexed frames, hijacked sockets."""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from typing import IO, Any

STDIN, STDOUT, STDERR = 0, 1, 2
_HEADER = struct.Struct(">BxxxL")


def json_lines(reader: IO[bytes]) -> Iterator[dict[str, Any]]:
    """JSON objects from a stream that flushes one (or more) per chunk."""
    decoder = json.JSONDecoder()
    buffer = ""
    while True:
        chunk = reader.read1(65536) if hasattr(reader, "read1") else reader.read(65536)
        if not chunk:
            break
        buffer += chunk.decode(errors="replace")
        while True:
            buffer = buffer.lstrip()
            if not buffer:
                break
            try:
                obj, end = decoder.raw_decode(buffer)
            except ValueError:
                break
            buffer = buffer[end:]
            yield obj


def _read_exactly(reader: IO[bytes], n: int) -> bytes:
    parts = []
    while n:
        part = reader.read(n)
        if not part:
            break
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def frames(reader: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """Demultiplex `[stream][0 0 0][uint32 length]payload` frames until EOF."""
    while True:
        header = _read_exactly(reader, _HEADER.size)
        if len(header) < _HEADER.size:
            return
        stream, length = _HEADER.unpack(header)
        payload = _read_exactly(reader, length)
        yield stream, payload
        if len(payload) < length:
            return


def raw_chunks(reader: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """A TTY stream: raw bytes, all of them stdout."""
    while True:
        chunk = reader.read1(65536) if hasattr(reader, "read1") else reader.read(65536)
        if not chunk:
            return
        yield STDOUT, chunk


def output(reader: IO[bytes], tty: bool) -> Iterator[tuple[int, bytes]]:
    return raw_chunks(reader) if tty else frames(reader)


class HijackedStream:
    """The socket of an upgraded request: reads through the response's buffer (it may hold
    bytes already), writes straight to the socket, half-closes when stdin ends."""

    def __init__(self, sock: socket.socket, reader: IO[bytes], upgraded: bool):
        self.sock = sock
        self.reader = reader
        self.upgraded = upgraded

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        try:
            if hasattr(self.sock, "unwrap"):
                return  # TLS: a shutdown would end the session for reading too
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.sock.close()
