"""Chat's inbox worker, driven with real channel layers: the test plays ws-gateway."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from channels.testing import ApplicationCommunicator

from chat import inbox as chat_inbox
from chat.inbox import ChatInbox
from chat.models import ChatRoom
from switchboard import presence as presence_module
from switchboard.presence import Member

pytestmark = [pytest.mark.usefixtures("channel_layers"), pytest.mark.django_db(transaction=True)]
ALICE = {"id": 1, "username": "alice", "is_staff": False}


@pytest.fixture(autouse=True)
def fresh_presence(monkeypatch):
    monkeypatch.setattr(presence_module, "_shared", None)


async def receive(channel, timeout=5):
    return await asyncio.wait_for(get_channel_layer().receive(channel), timeout)


async def run(commands):
    app = ApplicationCommunicator(ChatInbox.as_asgi(), {"type": "channel", "channel": "chat.0"})
    for command in commands:
        await app.send_input(command)
    return app


async def test_connect_to_unknown_room_is_rejected_4404():
    conn = await get_channel_layer().new_channel()
    app = await run(
        [{"type": "gw.connect", "conn": conn, "route": "chat", "user": ALICE, "params": {"room": "nowhere"}}]
    )
    assert await receive(conn) == {"type": "gw.reject", "code": 4404}
    app.stop()


async def test_connect_accepts_with_history_online_list_and_watermark():
    await ChatRoom.objects.acreate(name="Lobby", slug="lobby")
    conn = await get_channel_layer().new_channel()
    await chat_inbox.presence().add(["chat.room.lobby"], Member(conn, 1, "alice"))
    app = await run([{"type": "gw.connect", "conn": conn, "route": "chat", "user": ALICE, "params": {"room": "lobby"}}])
    accept = await receive(conn)
    assert accept["type"] == "gw.accept"
    assert accept["watermarks"] == {"chat.room.lobby": 0}
    assert '"online_users","users":["alice"]' in accept["frames"][1]
    app.stop()


async def test_message_is_stored_then_broadcast_with_seq_and_failures_answer_the_sender():
    await ChatRoom.objects.acreate(name="Lobby", slug="lobby")
    layer = get_channel_layer()
    member = await layer.new_channel()
    await layer.group_add("chat.room.lobby", member)
    sender = await layer.new_channel()
    base = {"type": "gw.receive", "conn": sender, "route": "chat", "user": ALICE, "params": {"room": "lobby"}}
    app = await run([{**base, "frame": {"type": "chat_message", "message": "hi", "client_id": "c"}}])
    sent = await receive(member)
    assert sent["seq"] == 1 and '"message":"hi"' in sent["text"]
    # A message to a room that does not exist: the sender hears why; the worker goes on.
    await app.send_input({**base, "params": {"room": "gone"}, "frame": {"type": "chat_message", "message": "?"}})
    assert '"code":"not_found"' in (await receive(sender))["text"]
    await app.send_input({**base, "frame": {"type": "chat_message", "message": "again"}})
    assert (await receive(member))["seq"] == 2
    app.stop()


async def test_a_connect_whose_socket_is_gone_is_not_accepted_nor_announced():
    await ChatRoom.objects.acreate(name="Lobby", slug="lobby")
    layer = get_channel_layer()
    member = await layer.new_channel()
    await layer.group_add("chat.room.lobby", member)
    stale = await layer.new_channel()  # never in presence: its socket already closed
    app = await run(
        [{"type": "gw.connect", "conn": stale, "route": "chat", "user": ALICE, "params": {"room": "lobby"}}]
    )
    with pytest.raises(asyncio.TimeoutError):
        await receive(stale, timeout=0.5)
    with pytest.raises(asyncio.TimeoutError):
        await receive(member, timeout=0.2)
    app.stop()
