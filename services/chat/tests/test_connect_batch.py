"""A storm's connects into one room, queued together, are handled as one step (issue 21):
one presence check and one history read for all of them, while each client still gets
exactly its own history (the messages after its `since`) and the room's watermark.

The worker here is the real one (ownership.Owner running ChatInbox on every shard,
real Redis, real database); the test plays ws-gateway: it puts each socket in the
room's presence and sends its gw.connect to the room's shard, all before the worker
starts, as after a gateway restart. What is counted is what the worker asked of the
database (its SQL, from the worker's own database thread) and of Redis (INFO
commandstats)."""

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from redis.asyncio import Redis

from chat import inbox as chat_inbox
from chat import store
from chat.inbox import ChatInbox
from chat.models import ChatRoom
from switchboard import ownership
from switchboard import presence as presence_module
from switchboard.config import env_int
from switchboard.presence import Member
from switchboard.routes import shard_channel
from switchboard.tokens import Identity

pytestmark = [pytest.mark.usefixtures("channel_layers"), pytest.mark.django_db(transaction=True)]

STORED = 12  # messages in the room before the storm
# Each client's `since` (None: a fresh tab); 8 is past SINCE_MAX (5) from the end, so truncated.
SINCES = [None, 0, 2, 3, 7, 11, 12, None, 5, 0, 9, 10, 4, 6, 8, 1, 12, None, 3, 11]


@pytest.fixture(autouse=True)
def fresh_presence(monkeypatch):
    monkeypatch.setattr(presence_module, "_shared", None)


async def receive(channel, timeout=10):
    return await asyncio.wait_for(get_channel_layer().receive(channel), timeout)


def record_sql(statements: list[str]):
    """Every statement of this thread's connection (the worker's database thread) into `statements`."""

    def wrapper(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    connection.execute_wrappers.append(wrapper)


async def presence_checks(redis_url) -> int:
    """ZSCORE and ZMSCORE commands the Redis server has run (each checks sockets' presence)."""
    client = Redis.from_url(redis_url)
    stats = await client.info("commandstats")
    await client.aclose()
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("zscore", "zmscore"))


def user(n: int) -> dict:
    return {"id": 100 + n, "username": f"user{n:02d}", "is_staff": False}


async def test_connects_queued_for_one_room_cost_one_presence_check_and_one_history_read(redis_url, monkeypatch):
    monkeypatch.setenv("HISTORY_LIMIT", "4")
    monkeypatch.setenv("SINCE_MAX", "5")
    room = await ChatRoom.objects.acreate(name="Lobby", slug="lobby")
    author = Identity(1, "alice", False)
    for i in range(STORED):
        await database_sync_to_async(store.post_message)(room.pk, author, f"m{i + 1}", None)
    conns, inbox = get_channel_layer(), get_channel_layer("inbox")
    shard = shard_channel("chat", "lobby")

    def connect(conn, n, since):
        params = {"room": "lobby"} if since is None else {"room": "lobby", "since": since}
        return {"type": "gw.connect", "conn": conn, "route": "chat", "user": user(n), "params": params}

    clients = []
    for n, since in enumerate(SINCES):
        conn = await conns.new_channel()
        await chat_inbox.presence().add(["chat.room.lobby"], Member(conn, user(n)["id"], user(n)["username"]))
        clients.append((conn, since))
        await inbox.send(shard, connect(conn, n, since))
    gone = await conns.new_channel()  # its socket closed while the command waited: not in presence
    await inbox.send(shard, connect(gone, 99, None))
    # A message after the storm, then one more connect: neither moves past the other.
    sender = await conns.new_channel()
    frame = {"type": "chat_message", "message": "after the storm", "client_id": "k"}
    await inbox.send(shard, {**connect(sender, 98, None), "type": "gw.receive", "frame": frame})
    late = await conns.new_channel()
    await chat_inbox.presence().add(["chat.room.lobby"], Member(late, user(97)["id"], user(97)["username"]))
    await inbox.send(shard, connect(late, 97, STORED))

    statements: list[str] = []
    await database_sync_to_async(record_sql)(statements)
    checks_before = await presence_checks(redis_url)
    owner = ownership.Owner(
        "chat",
        env_int("INBOX_SHARDS"),
        ChatInbox.as_asgi(),
        inbox,
        Redis.from_url(redis_url),
        raise_db_fence=database_sync_to_async(ownership.raise_db_fence),
        batch_types=ChatInbox.batch_types,
    )
    task = asyncio.ensure_future(owner.run())
    try:
        limit, since_max = 4, 5
        for conn, since in clients:
            accept = await receive(conn)
            assert accept["type"] == "gw.accept" and accept["watermarks"] == {"chat.room.lobby": STORED}
            history = json.loads(accept["frames"][0])
            after = list(range(1, STORED + 1)) if since is None else list(range(since + 1, STORED + 1))
            expected = after[-limit:] if since is None else after[-since_max:]
            assert [m["seq"] for m in history["messages"]] == expected, f"since={since}"
            assert [m["message"] for m in history["messages"]] == [f"m{s}" for s in expected]
            assert history["last_seq"] == STORED
            assert history["truncated"] == (since is not None and len(after) > since_max)
            online = json.loads(accept["frames"][1])
            assert online["type"] == "online_users" and online["users"][0] == "user00"
        # The late connect came after the message: it is in its history, past the watermark.
        accept = await receive(late)
        assert accept["watermarks"] == {"chat.room.lobby": STORED + 1}
        assert [m["message"] for m in json.loads(accept["frames"][0])["messages"]] == ["after the storm"]
        with pytest.raises(asyncio.TimeoutError):
            await receive(gone, timeout=0.3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    history_reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "chat_message" in s]
    room_reads = [s for s in statements if s.lstrip().upper().startswith("SELECT") and 'FROM "chat_chatroom"' in s]
    checks = await presence_checks(redis_url) - checks_before
    # Twenty-one connects before the message, one after it: two steps, not twenty-two.
    assert (len(history_reads), len(room_reads), checks) == (2, 2, 2), (
        f"{len(SINCES) + 2} connects (two runs) cost {len(history_reads)} history reads, "
        f"{len(room_reads)} room reads and {checks} presence checks"
    )
