"""Engine API client: UNIX sockets and TCP (+TLS), hijacked streams, frame demux. Stdlib only."""

from dockyard.client.api import APIError, Client

__all__ = ["APIError", "Client"]
