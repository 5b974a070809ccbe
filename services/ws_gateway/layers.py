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

And it owns who may touch that connection: only the shard's receive task connects,
reconnects and reads it; a subscribe or unsubscribe only writes, once the task has it up
(_OneReaderPubSub). redis-py's PubSub reconnects from whichever coroutine calls it, so a
socket subscribing while Redis came back read the handshake replies while the receive
task read the same stream: `RuntimeError: readuntil() called while another coroutine is
already waiting for incoming data`, found by the fault campaign's log scan
(tests/test_pubsub_lost.py reproduces it with a paused Redis).

Upstream gaps: the lost-messages-on-reconnect one is channels_redis#256 ("PubSub
Architecture", open), https://github.com/django/channels_redis/issues/256; release()
below forgets a channel the way channels_redis#276 ("Memory leak when using
channels_redis when using PubSub layer", open) asks for,
https://github.com/django/channels_redis/issues/276. For decoding a group message once
per member no upstream issue was found.
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
from channels_redis.utils import _wrap_close, create_pool
from redis import asyncio as aioredis
from redis.asyncio.client import PubSub

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


class _OneReaderPubSub(PubSub):
    """redis-py's PubSub for a connection that only the shard's receive task connects
    and reads: its commands (SUBSCRIBE, UNSUBSCRIBE, also on_connect's resubscribe) only
    write, and a failed read or write is not retried here.

    redis-py's PubSub reconnects from whichever coroutine uses it: execute_command()
    connects a dropped connection, and _execute() reconnects after an error, each then
    reading the handshake replies (CLIENT SETINFO ...) on the connection's stream. A
    subscribe doing that while the receive task is in get_message() on the same stream
    is two readers of one StreamReader: `RuntimeError: readuntil() called while another
    coroutine is already waiting for incoming data` (redis-py#2540 and #2722 are that
    error from two users of one connection). An in-library reconnect would also hide a
    lost connection from _do_receiving(), and so the frames published meanwhile."""

    async def execute_command(self, *args):
        conn = self.connection
        if conn is None or not conn.is_connected:
            raise redis.exceptions.ConnectionError("pub/sub connection to Redis is down")
        # check_health=False: a health check would PING and read its reply here.
        await conn.send_command(*args, check_health=False)

    async def _execute(self, conn, command, *args, **kwargs):
        return await command(*args, **kwargs)


class _DecodeOnceShard(RedisSingleShardConnection):
    """One Redis shard's pub/sub connection, owned by its receive task: that task alone
    connects, reconnects and reads it (see _OneReaderPubSub); subscribe() and
    unsubscribe() only write to it once the task has it up."""

    def __init__(self, host, channel_layer):
        super().__init__(host, channel_layer)
        self._up = False  # the receive task connected (and resubscribed) and saw no error since
        self._attempt = asyncio.Event()  # a subscribe asks the receive task to connect now
        self._waiting: list[asyncio.Future] = []  # subscribes waiting for that attempt

    def _ensure_redis(self):
        if self._redis is None:
            pool = create_pool(self.host)
            self._redis = aioredis.Redis(connection_pool=pool)
            self._pubsub = _OneReaderPubSub(pool)

    def _connected(self) -> bool:
        conn = self._pubsub.connection
        return self._up and conn is not None and conn.is_connected

    async def subscribe(self, channel):
        async with self._lock:
            if channel not in self._subscribed_to:
                self._ensure_redis()
                self._ensure_receiver()
                if not self._connected():
                    await self._connect_attempt()
                await self._pubsub.subscribe(channel)
                self._subscribed_to.add(channel)

    async def unsubscribe(self, channel):
        async with self._lock:
            if channel in self._subscribed_to:
                self._ensure_redis()
                self._ensure_receiver()
                if self._connected():
                    await self._pubsub.unsubscribe(channel)
                else:
                    # Nothing to tell a Redis that has no connection of ours: forget the
                    # channel, so that the reconnect does not subscribe it again.
                    for key in self._pubsub._normalize_keys({channel: None}):
                        self._pubsub.channels.pop(key, None)
                self._subscribed_to.remove(channel)

    async def _connect_attempt(self) -> None:
        """Wait for the receive task's next connect, raising its error if it fails (as a
        subscribe that connected itself would)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._attempt.set()
        await waiter

    def _attempted(self, error: BaseException | None) -> None:
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(redis.exceptions.ConnectionError(f"cannot connect to Redis: {error!r}"))

    async def _connect(self) -> None:
        self._attempt.clear()
        try:
            # The first time: a connection from the pool; after a loss: that connection
            # again, which runs PubSub.on_connect (SUBSCRIBE to every channel it had).
            await self._pubsub.connect()
        except BaseException as exc:
            self._attempted(exc)
            raise
        self._up = True
        self._attempted(None)

    async def _pause(self, seconds: float) -> None:
        """Wait before connecting again, less if a subscribe is waiting for a connection."""
        try:
            await asyncio.wait_for(self._attempt.wait(), seconds)
        except TimeoutError:
            pass

    async def _do_receiving(self):
        # channels_redis's loop, but this task (re)connects before it reads, and calls
        # subscriptions_lost() when the connection breaks (its own only logs and retries).
        while True:
            try:
                if not self._connected():
                    await self._connect()
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                self._receive_message(message)
            except (TimeoutError, asyncio.CancelledError, GeneratorExit):
                raise
            except LOST:
                await self._drop()
                await subscriptions_lost()
                await self._pause(1)
            except BaseException:
                await self._drop()
                log.exception("Unexpected exception in receive task")
                await self._pause(1)

    async def _drop(self) -> None:
        """Close the connection after an error: the next _connect() makes a new one (a
        failed read leaves it open, and where in a reply the stream stopped is unknown)."""
        self._up = False
        if self._pubsub.connection is not None:
            await self._pubsub.connection.disconnect(nowait=True)

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
