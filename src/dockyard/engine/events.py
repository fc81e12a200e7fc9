"""Docker's event stream: every object change, kept in a ring for `since`, fanned out live."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable

RING_SIZE = 1024


def make_event(kind: str, action: str, actor_id: str, attributes: dict[str, str]) -> dict:
    now_ns = time.time_ns()
    event = {
        "Type": kind,
        "Action": action,
        "Actor": {"ID": actor_id, "Attributes": dict(attributes)},
        "scope": "local",
        "time": now_ns // 1_000_000_000,
        "timeNano": now_ns,
    }
    if kind == "container":
        # The pre-1.22 fields the CLI still prints.
        event["status"] = action
        event["id"] = actor_id
        event["from"] = attributes.get("image", "")
    return event


class EventBus:
    def __init__(self) -> None:
        self._ring: deque[dict] = deque(maxlen=RING_SIZE)
        self._subscribers: set[asyncio.Queue] = set()

    def publish(self, kind: str, action: str, actor_id: str, attributes: dict[str, str]) -> dict:
        event = make_event(kind, action, actor_id, attributes)
        self._ring.append(event)
        for queue in list(self._subscribers):
            queue.put_nowait(event)
        return event

    def history(self) -> Iterable[dict]:
        return list(self._ring)

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._subscribers.discard(queue)
