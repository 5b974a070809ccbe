"""Chat on production Redis shapes (switchboard/redisconn.py), with real servers.

Sentinel: with REDIS_SENTINELS set, both channel layers and presence find the master
through a real Sentinel, and keep working after it fails over to the replica.
Shards: with CHANNEL_LAYER_URLS, both layers spread over two Redis servers, and the
inbox backlog gauge counts a shard's commands on both.

The test plays ws-gateway (it sends commands into chat's inbox shard and listens on a
room group) and runs chat's real inbox worker on the inbox layer, all configured by
settings_base.channel_layers() from the environment, as every process is."""

import asyncio

import pytest
import redis
from channels.layers import channel_layers, get_channel_layer
from channels.worker import Worker

from chat.inbox import ChatInbox
from chat.models import ChatRoom
from switchboard import presence as presence_module
from switchboard.inbox import backlog_reader
from switchboard.presence import Member
from switchboard.settings_base import channel_layers as layers_config
from switchboard.testing import free_port, redis_sentinel, start_redis  # noqa: F401

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


@pytest.fixture
def two_shards(tmp_path, settings, monkeypatch):
    """CHANNEL_LAYER_URLS over two real Redis servers; REDIS_URL (presence) is the first."""
    ports = [free_port(), free_port()]
    procs = [start_redis(port, str(tmp_path)) for port in ports]
    urls = [f"redis://127.0.0.1:{port}/0" for port in ports]
    monkeypatch.setenv("REDIS_URL", urls[0])
    monkeypatch.setenv("CHANNEL_LAYER_URLS", ",".join(urls))
    monkeypatch.setattr(presence_module, "_shared", None)
    settings.CHANNEL_LAYERS = layers_config()
    yield [redis.Redis.from_url(url) for url in urls]
    channel_layers.backends.clear()
    for proc in procs:
        proc.terminate()
        proc.wait(10)


async def test_sharded_layers_deliver_and_the_backlog_counts_every_shard(two_shards):
    groups, inbox = get_channel_layer(), get_channel_layer("inbox")
    assert inbox.ring_size == 2 and len(groups._kwargs["hosts"]) == 2
    # Group messages: each group lives on the shard its name hashes to; all arrive.
    members = {}
    for room in ("lobby", "kitchen", "garden", "attic"):
        members[room] = await groups.new_channel()
        await groups.group_add(f"chat.room.{room}", members[room])
    for room, member in members.items():
        await groups.group_send(f"chat.room.{room}", {"type": "gw.send", "text": room})
        assert (await receive(groups, member))["text"] == room

    # Inbox commands go round-robin over both servers; the backlog is their sum.
    for i in range(4):
        await inbox.send("chat.1", {"type": "gw.receive", "n": i})
    assert all(shard.zcard("sb-inboxchat.1") == 2 for shard in two_shards)
    assert backlog_reader("chat")() == {"0": 0, "1": 4, "2": 0, "3": 0}
    got = sorted([(await receive(inbox, "chat.1"))["n"] for _ in range(4)])
    assert got == [0, 1, 2, 3] and backlog_reader("chat")()["1"] == 0
