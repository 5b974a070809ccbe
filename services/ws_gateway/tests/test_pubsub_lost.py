"""A Redis restart under ws-gateway: every socket of the process is asked to reconnect
(4000), since group frames published while the pub/sub connection was down are gone
and a socket that only listens would otherwise never catch up (layers.py)."""

import asyncio
import logging
import os
import signal

from switchboard.closecodes import CloseCode
from switchboard.testing import free_port, start_redis
from ws_gateway import connections
from ws_gateway.layers import GatewayPubSubChannelLayer


class Socket:
    """Stands in for a GatewayConsumer in the registry: records how it was closed."""

    def __init__(self, channel_name: str):
        self.channel_name = channel_name
        self.closed: list[int] = []

    async def close(self, code: int, why: str) -> None:
        self.closed.append(int(code))


async def test_lost_pubsub_connection_closes_every_socket_with_4000(tmp_path):
    port = free_port()
    redis_proc = start_redis(port, str(tmp_path))
    layer = GatewayPubSubChannelLayer(hosts=[f"redis://127.0.0.1:{port}/0"], prefix="lost")
    try:
        channel = await layer.new_channel()
        await layer.group_add("room", channel)
        await layer.group_send("room", {"type": "gw.send", "text": "before"})
        assert (await asyncio.wait_for(layer.receive(channel), 5))["text"] == "before"
        socket = Socket(channel)
        connections.registry.open[channel] = socket  # the fresh registry of conftest.py

        redis_proc.kill()
        redis_proc.wait(10)
        for _ in range(100):
            if socket.closed:
                break
            await asyncio.sleep(0.1)
        assert socket.closed and set(socket.closed) == {CloseCode.RECONNECT}
    finally:
        redis_proc.kill()
        redis_proc.wait(10)
        await layer.flush()


async def test_a_socket_subscribing_as_redis_comes_back_leaves_the_connection_one_reader(tmp_path, caplog):
    """Redis restarts and is slow to answer when it is back (here paused with SIGSTOP: it
    accepts the connection, its handshake waits). A socket that subscribes then must not
    leave two coroutines reading the pub/sub connection: redis-py's PubSub reconnects
    from whichever coroutine uses it, so the subscribe's reconnect waited for its
    handshake reply while the receive task read the same stream (the fault campaign's
    `RuntimeError: readuntil() called while another coroutine is already waiting for
    incoming data`). The new socket must get its messages, and no traceback is logged."""
    caplog.set_level(logging.INFO)
    port = free_port()
    redis_proc = start_redis(port, str(tmp_path))
    layer = GatewayPubSubChannelLayer(hosts=[f"redis://127.0.0.1:{port}/0"], prefix="back")
    try:
        channel = await layer.new_channel()
        socket = Socket(channel)
        connections.registry.open[channel] = socket
        redis_proc.kill()
        redis_proc.wait(10)
        for _ in range(100):  # the receive task saw the connection go (and closed the socket)
            if socket.closed:
                break
            await asyncio.sleep(0.05)
        assert socket.closed == [CloseCode.RECONNECT]
        del connections.registry.open[channel]

        redis_proc = start_redis(port, str(tmp_path))
        os.kill(redis_proc.pid, signal.SIGSTOP)
        subscribing = asyncio.ensure_future(layer.new_channel())  # a socket connects
        await asyncio.sleep(2.5)  # past the receive task's pause after a lost connection
        os.kill(redis_proc.pid, signal.SIGCONT)
        fresh = await asyncio.wait_for(subscribing, 10)

        await layer.send(fresh, {"type": "gw.send", "text": "after"})
        assert (await asyncio.wait_for(layer.receive(fresh), 5))["text"] == "after"
        tracebacks = [f"{r.name}: {r.getMessage()}: {r.exc_info[1]!r}" for r in caplog.records if r.exc_info]
        assert tracebacks == []
    finally:
        os.kill(redis_proc.pid, signal.SIGCONT)
        redis_proc.kill()
        redis_proc.wait(10)
        await layer.flush()
