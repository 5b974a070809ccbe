"""ws-gateway's pub/sub channel layer: a group message is decoded once, not once per member,
and a channel's queue is the socket's own (SocketQueue, ws_gateway/socket_queue.py).

channels_redis's RedisPubSubChannelLayer puts the raw bytes of a group message in the
queue of every local member and msgpack-decodes them again in each member's
receive(): a broadcast to a room of N sockets on this process costs N decodes of the
same bytes. This subclass decodes a group message once when it arrives from Redis and
queues the same decoded message for every member (messages to one channel are
unchanged). The shared message is a read-only mapping, so no consumer can change what
the others receive. Configured for ws-gateway only (ws_gateway/settings.py); services
only publish, and publishing is unchanged.

It also owns what happens when the pub/sub connection to Redis breaks (a Redis restart):
redis-py subscribes again once Redis is back, but every group frame published in
between is gone, and a socket that only listens (a notification tab) would never
know. So every socket of this process is closed with 4000 RECONNECT: clients reconnect
and catch up the way they do after any reconnect (chat's `?since`, a Yjs sync, the
notification count and list, a report's status).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from types import MappingProxyType

import redis.exceptions
from autobahn.websocket.protocol import PreparedMessage
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close

from switchboard.closecodes import CloseCode
from ws_gateway import connections
from ws_gateway.socket_queue import SocketQueue

log = logging.getLogger(__name__)
LOST = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


async def subscriptions_lost() -> None:
    """Group frames may have been missed: ask every socket of this process to reconnect."""
    consumers = list(connections.registry.open.values())
    if consumers:
        log.warning("pub/sub connection to Redis lost: closing %d sockets with 4000", len(consumers))
    for consumer in consumers:
        try:
            await consumer.close(CloseCode.RECONNECT, "pubsub_lost")
        except Exception:
            log.exception("could not close %s", getattr(consumer, "channel_name", "?"))


class _Decoded:
    """A group message already decoded; receive() returns its value as is. `prepared`:
    its frame, encoded once for every socket that sends it as is (see prepared())."""

    __slots__ = ("value", "prepared")

    def __init__(self, value):
        self.value = value
        self.prepared = None


def prepared(item, payload: str | bytes) -> PreparedMessage:
    """The WebSocket frame of a decoded group message's payload, built on first use and
    shared: a server's frames are unmasked, so every uncompressed socket sends the same
    bytes (autobahn's PreparedMessage, its API for broadcast)."""
    frame = item.prepared
    if frame is None:
        binary = isinstance(payload, bytes)
        frame = item.prepared = PreparedMessage(
            payload if binary else payload.encode(), binary, applyMask=False, doNotCompress=False
        )
    return frame


def decoded(item) -> Mapping | None:
    """The group message in a queued item if the layer decoded it already, else None."""
    return item.value if type(item) is _Decoded else None


class _DecodeOnceShard(RedisSingleShardConnection):
    async def _do_receiving(self):
        # channels_redis's loop, plus subscriptions_lost() when the connection breaks
        # (its own only logs and retries).
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (TimeoutError, asyncio.CancelledError, GeneratorExit):
                raise
            except LOST:
                await subscriptions_lost()
                await asyncio.sleep(1)
            except BaseException:
                log.exception("Unexpected exception in receive task")
                await asyncio.sleep(1)

    def _receive_message(self, message):
        if message is None:
            return
        layer = self.channel_layer  # the per-loop layer
        name = message["channel"]
        if isinstance(name, bytes):
            name = name.decode()
        data = message["data"]
        if name in layer.channels:
            layer.channels[name].put_nowait(data)
            return
        members = layer.groups.get(name)
        if not members:
            return
        shared = _Decoded(MappingProxyType(layer.channel_layer.deserialize(data)))
        for channel_name in members:
            queue = layer.channels.get(channel_name)
            if queue is not None:
                queue.put_nowait(shared)


class _DecodeOnceLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._shards = [_DecodeOnceShard(shard.host, self) for shard in self._shards]

    async def _subscribe_to_channel(self, channel, queue: SocketQueue | None = None):
        # As the parent's, with a SocketQueue (a few hundred bytes less than asyncio.Queue).
        self.channels[channel] = SocketQueue() if queue is None else queue
        await self._get_shard(channel).subscribe(channel)


class GatewayPubSubChannelLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer whose group messages are decoded once per process."""

    def deserialize(self, message):
        if type(message) is _Decoded:
            return message.value
        return super().deserialize(message)

    async def new_channel_on(self, queue: SocketQueue, prefix: str = "specific.") -> str:
        """new_channel(), whose messages go to `queue`: the socket's own input queue
        (daphne_memory.py), so a socket has one queue and no task copying between two."""
        layer = self._get_layer()
        channel = f"{layer.prefix}{prefix}{uuid.uuid4().hex}"
        await layer._subscribe_to_channel(channel, queue)
        return channel

    def queue_of(self, channel: str) -> SocketQueue:
        """The local queue of a channel made by new_channel(): what receive() reads.

        GatewayConsumer reads it directly and puts its client frames in it too, so a
        socket has one queue and one task step per message (see its __call__)."""
        return self._get_layer().channels[channel]

    async def release(self, channel: str) -> None:
        """Forget a channel and unsubscribe it: what receive() does when cancelled."""
        layer = self._get_layer()
        if layer.channels.pop(channel, None) is not None:
            await layer._get_shard(channel).unsubscribe(channel)

    def _get_layer(self):
        # As the parent's, with the decode-once loop layer.
        loop = asyncio.get_running_loop()
        try:
            layer = self._layers[loop]
        except KeyError:
            layer = _DecodeOnceLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
        return layer
