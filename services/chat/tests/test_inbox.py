"""Chat's inbox worker, driven with real channel layers: the test plays ws-gateway."""

import asyncio
import json

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
    # As the gateway does before it asks: the socket is in the room's presence.
    await chat_inbox.presence().add(["chat.room.nowhere"], Member(conn, 1, "alice"))
    app = await run(
        [{"type": "gw.connect", "conn": conn, "route": "chat", "user": ALICE, "params": {"room": "nowhere"}}]
    )
    assert await receive(conn) == {"type": "gw.reject", "code": 4404}
    app.stop()


async def test_a_connect_shed_by_its_rooms_full_lane_is_refused_1013_with_nothing_read():
    # ownership.ShardRunner marks a connect beyond INBOX_LANE_BACKLOG of its room.
    await ChatRoom.objects.acreate(name="Lobby", slug="lobby")
    conn = await get_channel_layer().new_channel()
    await chat_inbox.presence().add(["chat.room.lobby"], Member(conn, 1, "alice"))
    command = {"type": "gw.connect", "conn": conn, "route": "chat", "user": ALICE, "params": {"room": "lobby"}}
    app = await run([{**command, "__shed__": True}])
    assert await receive(conn) == {"type": "gw.reject", "code": 1013}
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


async def test_a_resend_gives_the_whole_room_the_stored_seq_again_and_nothing_unsequenced():
    """A worker killed after storing a message never broadcast it; the sender resends
    it (no echo came). The room, sender included, is sent it again under its seq: the
    gateway drops it where that seq arrived already and sends it where it did not. No
    direct, unsequenced echo, which the gateway could not drop where it was seen."""
    await ChatRoom.objects.acreate(name="Lobby", slug="lobby")
    layer = get_channel_layer()
    member = await layer.new_channel()
    sender = await layer.new_channel()
    base = {"type": "gw.receive", "conn": sender, "route": "chat", "user": ALICE, "params": {"room": "lobby"}}
    first = {**base, "frame": {"type": "chat_message", "message": "hi", "client_id": "c"}}
    app = await run([first])  # stored and broadcast to nobody: no member yet
    await asyncio.sleep(0.3)
    await layer.group_add("chat.room.lobby", member)
    await layer.group_add("chat.room.lobby", sender)
    await app.send_input(first)
    to_member, to_sender = await receive(member), await receive(sender)
    assert '"message":"hi"' in to_member["text"]
    assert (to_member["seq"], to_member.get("exclude_conn")) == (1, None)
    assert to_sender == to_member  # the group frame, seq and all; nothing else
    with pytest.raises(asyncio.TimeoutError):
        await receive(sender, timeout=0.3)
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


async def test_a_join_storm_announces_every_user_once_in_few_frames_and_the_last_list_is_everyone(monkeypatch):
    window = 0.3
    monkeypatch.setenv("ONLINE_USERS_COALESCE_SECONDS", str(window))
    await ChatRoom.objects.acreate(name="Lobby", slug="lobby")
    layer = get_channel_layer()
    watcher = await layer.new_channel()
    await layer.group_add("chat.room.lobby", watcher)
    users = [{"id": 100 + i, "username": f"user{i:02d}", "is_staff": False} for i in range(50)]
    commands = []
    for user in users:
        conn = await layer.new_channel()
        await chat_inbox.presence().add(["chat.room.lobby"], Member(conn, user["id"], user["username"]))
        commands.append(
            {"type": "gw.connect", "conn": conn, "route": "chat", "user": user, "params": {"room": "lobby"}}
        )
    started = asyncio.get_running_loop().time()
    app = await run(commands)
    joins, lists = [], []
    while True:  # until the room is quiet for a few windows
        try:
            text = (await receive(watcher, timeout=window * 4))["text"]
        except TimeoutError:
            break
        if '"type":"user_join"' in text:
            joins.append(json.loads(text))
        elif '"type":"online_users"' in text:
            lists.append(json.loads(text)["users"])
    elapsed = asyncio.get_running_loop().time() - started
    # Every user is announced exactly once...
    announced = [name for j in joins for name in j.get("users", [j["user"]])]
    assert sorted(announced) == [u["username"] for u in users]
    # ...in at most a frame per window (a frame per join would be 50 to every member),
    # and a coalesced one still reads right where only `user` is shown (the seed's page).
    assert 1 <= len(joins) <= elapsed / window + 1
    for j in joins:
        if "users" in j:
            assert j["count"] == len(j["users"]) > 1
            assert j["user"].startswith(", ".join(j["users"][:3]))
    assert 1 <= len(lists) <= elapsed / window + 1
    # and the last list names everyone.
    assert lists[-1] == [u["username"] for u in users]
    app.stop()


async def test_a_leave_is_announced_and_the_list_follows_without_the_leaver(monkeypatch):
    monkeypatch.setenv("ONLINE_USERS_COALESCE_SECONDS", "0.1")
    await ChatRoom.objects.acreate(name="Lobby", slug="lobby")
    layer = get_channel_layer()
    watcher = await layer.new_channel()
    await layer.group_add("chat.room.lobby", watcher)
    bob = {"id": 2, "username": "bob", "is_staff": False}
    await chat_inbox.presence().add(["chat.room.lobby"], Member(watcher, 1, "alice"))
    app = await run(
        [{"type": "gw.disconnect", "conn": "gone", "route": "chat", "user": bob, "params": {"room": "lobby"}}]
    )
    leave = json.loads((await receive(watcher))["text"])
    assert (leave["type"], leave["user"]) == ("user_leave", "bob")
    listed = json.loads((await receive(watcher))["text"])
    assert listed == {"type": "online_users", "users": ["alice"]}
    app.stop()


async def test_a_system_message_takes_the_rooms_next_seq_and_is_acknowledged_once(redis_url):
    import redis.asyncio

    await ChatRoom.objects.acreate(name="Lobby", slug="lobby")
    layer = get_channel_layer()
    member = await layer.new_channel()
    await layer.group_add("chat.room.lobby", member)
    sender = await layer.new_channel()
    user_msg = {"type": "gw.receive", "conn": sender, "route": "chat", "user": ALICE, "params": {"room": "lobby"}}
    system = {
        "type": "chat.system",
        "room": "lobby",
        "message": "Shop closes at 6",
        "user": "Shop",
        "client_id": "k1",
        "reply_to": "sb:test-reply",
    }
    app = await run([{**user_msg, "frame": {"type": "chat_message", "message": "hi"}}, system, system])
    first, second, repeat = (await receive(member), await receive(member), await receive(member))
    assert (first["seq"], second["seq"], repeat["seq"]) == (1, 2, 2)  # the repeat: stored once
    shown = json.loads(second["text"])
    assert shown["system"] is True and shown["user"] == "Shop" and "client_id" not in shown
    client = redis.asyncio.Redis.from_url(redis_url)
    replies = [json.loads(r) for r in await client.lrange("sb:test-reply", 0, -1)]
    await client.aclose()
    assert [r["message"]["seq"] for r in replies] == [2, 2] and all(r["ok"] for r in replies)
    app.stop()
