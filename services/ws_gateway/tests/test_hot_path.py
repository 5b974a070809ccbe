"""The gateway's hot path: group messages decoded once, per-user budget leased from Redis.

Behaviour only; how fast it is belongs to `make bench`, never to a test.
"""

from __future__ import annotations

import asyncio

import pytest

from ws_gateway import connections
from ws_gateway.layers import GatewayPubSubChannelLayer


@pytest.fixture
def layer(redis_url):
    return GatewayPubSubChannelLayer(hosts=[redis_url], prefix="t")


async def test_a_group_message_is_decoded_once_and_shared_read_only(layer, monkeypatch):
    a, b = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("room", a)
    await layer.group_add("room", b)
    decodes = 0
    original = GatewayPubSubChannelLayer.__mro__[1].deserialize

    def counting(self, message):
        nonlocal decodes
        decodes += 1
        return original(self, message)

    monkeypatch.setattr(GatewayPubSubChannelLayer.__mro__[1], "deserialize", counting)
    await layer.group_send("room", {"type": "gw.send", "text": "hi", "seq": 3})
    got_a = await asyncio.wait_for(layer.receive(a), 5)
    got_b = await asyncio.wait_for(layer.receive(b), 5)
    assert got_a == got_b == {"type": "gw.send", "text": "hi", "seq": 3}
    assert decodes == 1
    with pytest.raises(TypeError):
        got_a["text"] = "changed"  # shared by every member: nobody may change it
    await layer.flush()


async def test_a_message_to_one_channel_is_unchanged_and_release_unsubscribes(layer):
    a = await layer.new_channel()
    queue = layer.queue_of(a)
    await layer.send(a, {"type": "gw.accept", "frames": ["x"]})
    raw = await asyncio.wait_for(queue.get(), 5)
    assert layer.deserialize(raw) == {"type": "gw.accept", "frames": ["x"]}
    await layer.release(a)
    with pytest.raises(KeyError):
        layer.queue_of(a)
    await layer.flush()


async def test_user_budget_asks_redis_once_per_lease_and_still_limits(redis_url, monkeypatch):
    monkeypatch.setenv("RATE_USER_PER_SECOND", "20")
    monkeypatch.setenv("RATE_USER_BURST", "40")
    registry = connections.Registry()
    registry._setup()
    calls = 0
    take = registry.user_budget.take

    async def counting(key, cost=1):
        nonlocal calls
        calls += 1
        return await take(key, cost)

    registry.user_budget.take = counting
    allowed = [(await registry.take_user_budget(7)).allowed for _ in range(60)]
    lease = int(20 * connections.LEASE_SECONDS)
    # The burst, give or take the refill while the test runs; then refusals.
    assert 40 <= sum(allowed) <= 40 + lease
    assert not allowed[-1]
    assert calls < 60  # fewer round trips than frames
    registry._heartbeat.cancel()


def test_permessage_deflate_is_off_unless_enabled(monkeypatch):
    from autobahn.websocket.compress import PerMessageDeflateOffer
    from daphne.ws_protocol import WebSocketFactory

    from ws_gateway import daphne_deflate

    offer = [PerMessageDeflateOffer()]
    try:
        monkeypatch.delenv("WS_PERMESSAGE_DEFLATE", raising=False)
        daphne_deflate.install()
        assert WebSocketFactory(None).perMessageCompressionAccept(offer) is None
        monkeypatch.setenv("WS_PERMESSAGE_DEFLATE", "1")
        daphne_deflate.install()
        assert WebSocketFactory(None).perMessageCompressionAccept(offer) is not None
    finally:
        monkeypatch.delenv("WS_PERMESSAGE_DEFLATE", raising=False)
        daphne_deflate.install()


async def test_socket_queue_keeps_order_and_hands_items_to_direct_only_while_its_reader_waits():
    from ws_gateway.socket_queue import SocketQueue

    queue = SocketQueue()
    handled: list = []
    queue.direct = lambda item: item.startswith("direct") and (handled.append(item) or True)
    queue.put_nowait("direct-early")  # nobody waits yet: queued, in order
    queue.put_nowait("b")
    assert [await queue.get(), await queue.get()] == ["direct-early", "b"]
    assert queue.empty() and queue._items is None  # an idle queue keeps no deque

    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)  # the reader is parked
    queue.put_nowait("direct-now")  # handled at once, the reader stays parked
    queue.put_nowait("other")  # not for direct: wakes the reader
    queue.put_nowait("direct-later")  # the reader has an item pending: queued behind it
    assert handled == ["direct-now"]
    assert await reader == "other"
    assert await queue.get() == "direct-later"


async def test_a_failing_direct_delivery_falls_back_to_the_queue():
    from ws_gateway.socket_queue import SocketQueue

    queue = SocketQueue()

    def broken(item):
        raise RuntimeError("socket gone")

    queue.direct = broken
    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("frame")
    assert await reader == "frame"


async def test_a_channel_filed_under_a_socket_queue_delivers_there(layer):
    from ws_gateway.socket_queue import SocketQueue

    queue = SocketQueue()
    channel = await layer.new_channel_on(queue)
    assert layer.queue_of(channel) is queue
    await layer.group_add("room", channel)
    await layer.group_send("room", {"type": "gw.send", "text": "hi"})
    got = await asyncio.wait_for(queue.get(), 5)
    assert layer.deserialize(got) == {"type": "gw.send", "text": "hi"}
    await layer.release(channel)
    await layer.flush()


def test_a_group_frame_is_encoded_once_as_a_plain_server_frame():
    from ws_gateway.layers import _Decoded, prepared

    item = _Decoded({"type": "gw.send", "text": "héllo"})
    frame = prepared(item, "héllo")
    assert prepared(item, "héllo") is frame  # shared by every member
    payload = "héllo".encode()
    assert frame.payloadHybi == bytes([0x81, len(payload)]) + payload  # FIN+text, unmasked
