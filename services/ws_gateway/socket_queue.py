"""The one queue of a gateway socket, and the broadcast path that skips it when it can.

A socket under daphne used to hold two asyncio.Queues (daphne's input queue and the
channel layer's queue of its channel) and a task forwarding one into the other. An
asyncio.Queue allocates three deques and an Event up front, about 3 KB, so those were a
fifth of a socket's memory (docs/performance.md). SocketQueue is what one reader
needs: a FIFO whose deque exists only while items wait, and one waiter. daphne makes
one per WebSocket (daphne_memory.py) and ws-gateway's layer files the socket's channel
under the same queue (layers.py), so client events and channel messages keep one order.

`direct`: when the socket's consumer is parked in get() with nothing queued, a put may
hand the item to this synchronous callable instead of waking the consumer's task. The
consumer sets it to write a group frame straight to its socket (GatewayConsumer.
send_group_now): a broadcast to N local sockets is then one loop over N writes, as in
the floor, instead of N task wake-ups queued behind one another. The callable returns
False for anything it does not handle, and that item takes the ordinary path.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class SocketQueue:
    """FIFO for one reader (a socket's consumer), with asyncio.Queue's get/put_nowait."""

    __slots__ = ("_items", "_waiter", "direct")

    def __init__(self) -> None:
        self._items: deque | None = None
        self._waiter: asyncio.Future | None = None
        self.direct: Callable[[Any], bool] | None = None

    def put_nowait(self, item: Any) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            # The reader is parked and nothing is ahead of this item.
            direct = self.direct
            if direct is not None:
                try:
                    if direct(item):
                        return
                except Exception:  # one broken socket must not stop a broadcast
                    log.exception("gateway: direct delivery failed; queueing instead")
            waiter.set_result(item)
            return
        items = self._items
        if items is None:
            items = self._items = deque()
        items.append(item)

    async def get(self) -> Any:
        items = self._items
        if items:
            item = items.popleft()
            if not items:
                self._items = None  # an idle socket keeps no deque
            return item
        if self._waiter is not None:
            raise RuntimeError("SocketQueue has one reader")
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            return await waiter
        finally:
            self._waiter = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items
