"""The whole fleet on Redis Sentinel, as prod's overlay runs it: every process gets
REDIS_SENTINELS instead of a Redis address, and keeps working when Sentinel fails the
master over to its replica: open sockets are closed with 4000 (the gateway lost its
pub/sub connection) and come back with `since`, missing nothing.

A fleet of its own (one gateway process, to keep it light) on a real master, replica
and `redis-server --sentinel` (switchboard.testing.SentinelSetup); users reach it
through nginx, as in every e2e test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time

import httpx
import pytest
import redis
from fleetenv import E2E_ENV
from test_chat import new_room, room_url
from test_inbox_backlog import backlog_becomes
from wsclient import Client, token

from launcher import Fleet, free_port
from switchboard.testing import SentinelSetup


@pytest.fixture(scope="module")
def sentinel_fleet(tmp_path_factory):
    sentinel = SentinelSetup(tmp_path_factory.mktemp("sentinel"))
    run_dir = tmp_path_factory.mktemp("sentinel-fleet")
    env = {
        **E2E_ENV,
        "REDIS_SENTINELS": f"127.0.0.1:{sentinel.sentinel_port}",
        "REDIS_SENTINEL_MASTER": sentinel.MASTER,
    }
    # No Redis of the launcher's own; the host of this URL is never used (db 0).
    fleet = Fleet(
        run_dir=run_dir, gateway_port=free_port(), ws_gateway_processes=1, redis_url="redis://sentinel/0", env=env
    )
    try:
        fleet.start(wait=120)
        yield fleet, sentinel
    finally:
        fleet.stop()
        sentinel.stop()
        if not os.environ.get("KEEP_FLEET"):  # KEEP_FLEET=1 keeps logs for a post-mortem
            shutil.rmtree(run_dir, ignore_errors=True)


async def online_on(port: int, topic: str, timeout: float = 30) -> set[str]:
    """Usernames with a live presence entry in `topic` on the Redis at `port`, polled
    until alice and bob are both there (or the timeout)."""
    client = redis.Redis(port=port)
    deadline = time.monotonic() + timeout
    while True:
        live = client.zrangebyscore(f"sb:presence:{topic}", time.time(), "+inf")
        users = {m.decode().split("|", 2)[2] for m in live}
        if users >= {"alice", "bob"} or time.monotonic() > deadline:
            return users
        await asyncio.sleep(0.2)


async def test_chat_and_presence_survive_a_sentinel_failover(sentinel_fleet):
    fleet, sentinel = sentinel_fleet
    tokens = {name: token(fleet.url, name) for name in ("alice", "bob", "admin")}
    room = new_room(fleet, tokens)
    alice = await Client.connect(room_url(fleet, room), tokens["alice"])
    await alice.next_of("history")
    bob = await Client.connect(room_url(fleet, room), tokens["bob"])
    assert (await bob.next_of("online_users"))["users"] == ["alice", "bob"]
    await alice.send({"type": "chat_message", "message": "before", "client_id": "b1"})
    assert (await bob.next_of("chat_message"))["message"] == "before"

    old = sentinel.master_port()
    new = sentinel.failover()
    assert new != old

    # The demoted master drops its clients (Sentinel kills them so they re-resolve), so
    # the gateway's pub/sub connection is lost and what was published meanwhile cannot
    # be known: every socket is told to reconnect (4000), and each client comes back
    # with the last seq it saw and is given what it missed. Pools reconnect to the
    # promoted replica. Writes that reached the old master between the promotion and its
    # demotion are lost (Sentinel's failover window, docs/operations.md).
    assert await alice.closed_with(timeout=30) == 4000
    assert await bob.closed_with(timeout=30) == 4000
    alice = await Client.connect(room_url(fleet, room, since=1), tokens["alice"])
    assert (await alice.next_of("history", timeout=15))["messages"] == []
    bob = await Client.connect(room_url(fleet, room, since=1), tokens["bob"])
    await bob.next_of("history", timeout=15)
    assert await online_on(new, f"chat.room.{room}") == {"alice", "bob"}
    await alice.send({"type": "chat_message", "message": "after", "client_id": "a1"})
    got = await bob.next_of("chat_message", timeout=15)
    assert (got["message"], got["seq"]) == ("after", 2)
    admin = await Client.connect(room_url(fleet, room), tokens["admin"])
    assert [m["message"] for m in (await admin.next_of("history"))["messages"]] == ["before", "after"]
    assert (await admin.next_of("online_users"))["users"] == ["admin", "alice", "bob"]
    faces = [p for p in fleet.programs if p.name.endswith("-http") or p.name.startswith("ws-gateway-")]
    ready = {p.name: httpx.get(f"http://127.0.0.1:{p.http_port}/readyz") for p in faces}
    assert {name: r.status_code for name, r in ready.items() if r.status_code != 200} == {}

    # The backlog gauge reads the promoted master too (chat-http's blocking client).
    fleet.ctl("stop", "chat-inbox")
    try:
        await alice.send({"type": "chat_message", "message": "queued", "client_id": "q1"})
        assert await backlog_becomes(fleet, 1) == 1
    finally:
        fleet.ctl("start", "chat-inbox")
        fleet.wait_ready(time.time() + 30, ["chat-inbox"])
    assert (await bob.next_of("chat_message", timeout=15))["message"] == "queued"
    assert await backlog_becomes(fleet, 0) == 0
    for client in (alice, bob, admin):
        await client.close()
