"""A Redis restart under ws-gateway: every socket of the process is asked to reconnect
(4000), since group frames published while the pub/sub connection was down are gone
and a socket that only listens would otherwise never catch up (layers.py)."""

import asyncio

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
