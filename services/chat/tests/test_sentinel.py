"""Chat on Redis Sentinel: with REDIS_SENTINELS set, both channel layers and presence find
the master through a real Sentinel, and keep working after it fails over to the replica.

The test plays ws-gateway (it sends commands into chat's inbox shard and listens on a
room group) and runs chat's real inbox worker on the inbox layer, all configured by
settings_base.channel_layers() from the environment, as every process is."""

import asyncio

import pytest
from channels.layers import channel_layers, get_channel_layer
from channels.worker import Worker

from chat.inbox import ChatInbox
from chat.models import ChatRoom
from switchboard import presence as presence_module
from switchboard.presence import Member
from switchboard.settings_base import channel_layers as layers_config
from switchboard.testing import redis_sentinel  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
ALICE = {"id": 1, "username": "alice", "is_staff": False}


@pytest.fixture
def sentinel_layers(redis_sentinel, settings, monkeypatch):  # noqa: F811
    monkeypatch.setattr(presence_module, "_shared", None)
    settings.CHANNEL_LAYERS = layers_config()  # from REDIS_SENTINELS, as in a process
    yield redis_sentinel
    channel_layers.backends.clear()


async def receive(layer, channel, timeout=10):
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def next_chat_message(layer, channel):
    """The next stored chat message broadcast to the room (skips user_join and the like)."""
    while "seq" not in (message := await receive(layer, channel)):
        pass
    return message


async def test_chat_message_and_presence_through_sentinel_and_after_a_failover(sentinel_layers):
    groups, inbox = get_channel_layer(), get_channel_layer("inbox")
    assert inbox.hosts[0]["master_name"] == "switchboard"  # no URL anywhere: the Sentinel's answer
    await ChatRoom.objects.acreate(name="Lobby", slug="lobby")
    worker = asyncio.ensure_future(
        Worker(application=ChatInbox.as_asgi(), channels=["chat.0"], channel_layer=inbox).handle()
    )
    conn = await groups.new_channel()
    await groups.group_add("chat.room.lobby", conn)
    await presence_module.shared().add(["chat.room.lobby"], Member(conn, 1, "alice"))
    base = {"conn": conn, "route": "chat", "user": ALICE, "params": {"room": "lobby"}}

    await inbox.send("chat.0", {**base, "type": "gw.connect"})
    accept = await receive(groups, conn)
    assert accept["type"] == "gw.accept"
    assert '"online_users","users":["alice"]' in accept["frames"][1]  # presence read via Sentinel
    await inbox.send("chat.0", {**base, "type": "gw.receive", "frame": {"type": "chat_message", "message": "one"}})
    first = await next_chat_message(groups, conn)
    assert first["seq"] == 1 and '"message":"one"' in first["text"]

    old_master = sentinel_layers.master_port()
    assert sentinel_layers.failover() != old_master

    # The same layer objects and presence client: the next command finds the new master.
    await inbox.send("chat.0", {**base, "type": "gw.receive", "frame": {"type": "chat_message", "message": "two"}})
    second = await next_chat_message(groups, conn)
    assert second["seq"] == 2 and '"message":"two"' in second["text"]
    assert await presence_module.shared().users("chat.room.lobby") == ["alice"]  # replicated, then promoted
    assert not worker.done(), worker.exception() if worker.done() else ""
    worker.cancel()
