"""Embedded DNS, as Docker's 127.0.0.11: a UDP socket made inside each container's network
namespace (a socket stays in the namespace it was created in), served by the daemon's event
loop. Names of the container's networks are answered from the daemon's state; others are
forwarded to the host's resolvers from the host's namespace, which can reach them even when
they are on the host's loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from dockyard.network import nsthread
from dockyard.network.errors import NetworkError

ADDRESS = "127.0.0.11"
TTL = 600
log = logging.getLogger("dockyard.network.dns")
# (container ID, lower-case name without the final dot) -> addresses, or None if unknown.
Lookup = Callable[[str, str], list[str] | None]


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer, container_id: str):
        self.server = server
        self.container_id = container_id
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        task = asyncio.ensure_future(self.server.answer(self.container_id, data))
        task.add_done_callback(lambda t: self._reply(t, addr))

    def _reply(self, task: asyncio.Future, addr) -> None:
        if self.transport is None or task.cancelled() or task.exception() is not None:
            return
        reply = task.result()
        if reply:
            self.transport.sendto(reply, addr)


class DNSServer:
    def __init__(self, lookup: Lookup, upstreams: Callable[[], list[str]]):
        self.lookup = lookup
        self.upstreams = upstreams
        self.listeners: dict[str, asyncio.DatagramTransport] = {}

    async def listen(self, container_id: str, netns_path: str) -> None:
        """Serve 127.0.0.11:53 inside the namespace at `netns_path`. A container already
        served keeps its listener (answers are looked up per query): a closed transport
        frees its port only on a later loop turn, so binding again now would fail."""
        if container_id in self.listeners:
            return
        try:
            sock = await asyncio.to_thread(nsthread.run, _bound_socket, netns=netns_path)
            sock.setblocking(False)
        except OSError as error:
            raise NetworkError(f"starting the embedded DNS server: {error}") from None
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Listener(self, container_id), sock=sock
        )
        self.listeners[container_id] = transport

    def stop(self, container_id: str) -> None:
        transport = self.listeners.pop(container_id, None)
        if transport is not None:
            transport.close()

    def stop_all(self) -> None:
        for container_id in list(self.listeners):
            self.stop(container_id)

    async def answer(self, container_id: str, data: bytes) -> bytes | None:
        try:
            query = DNSRecord.parse(data)
        except Exception:
            return None  # not DNS: no answer, as a resolver would
        question = query.q
        name = str(question.qname).rstrip(".").lower()
        addresses = self.lookup(container_id, name)
        if addresses is None:
            return await self._forward(data, query)
        reply = query.reply()
        if question.qtype in (QTYPE.A, QTYPE.ANY):
            for address in addresses:
                reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=TTL))
        return reply.pack()

    async def _forward(self, data: bytes, query: DNSRecord) -> bytes:
        for upstream in self.upstreams():
            try:
                return await asyncio.to_thread(_ask, upstream, data)
            except OSError:
                continue
        reply = query.reply()
        reply.header.rcode = RCODE.SERVFAIL
        return reply.pack()


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((ADDRESS, 53))
    except OSError:
        sock.close()
        raise
    return sock


def _ask(server: str, data: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.connect((server, 53))
        sock.send(data)
        return sock.recv(65535)
