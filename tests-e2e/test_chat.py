"""Chat end to end, through nginx: two users, the seed's frames, reconnect with since,
idempotent resends, restarts of the chat service, and the close codes."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from wsclient import Client


def room_url(fleet, room="lobby", **params):
    q = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{fleet.ws_url}/ws/chat/{room}/" + (f"?{q}" if q else "")


def new_room(fleet, tokens) -> str:
    slug = "r" + uuid.uuid4().hex[:10]
    res = httpx.post(
        f"{fleet.url}/api/chat/rooms/", json={"name": slug}, headers={"Authorization": f"Bearer {tokens['alice']}"}
    )
    assert res.status_code == 201, res.text
    return slug


async def test_two_users_chat_with_notices_online_list_and_typing(fleet, tokens):
    room = new_room(fleet, tokens)
    alice = await Client.connect(room_url(fleet, room), tokens["alice"])
    history = await alice.next_of("history")
    assert history["messages"] == []
    assert (await alice.next_of("online_users"))["users"] == ["alice"]

    bob = await Client.connect(room_url(fleet, room), tokens["bob"])
    assert (await bob.next_of("online_users"))["users"] == ["alice", "bob"]
    await alice.next_of("user_join", user="bob")

    await alice.send({"type": "chat_message", "message": "hello bob", "client_id": "c1"})
    for client in (alice, bob):
        got = await client.next_of("chat_message")
        assert (got["user"], got["message"], got["client_id"]) == ("alice", "hello bob", "c1")
        assert got["seq"] == 1

    await bob.send({"type": "typing"})
    assert (await alice.next_of("user_typing"))["user"] == "bob"
    assert all(f["type"] != "user_typing" for f in await bob.drain())

    await bob.close()
    await alice.next_of("user_leave", user="bob")
    await alice.close()


async def test_second_tab_counts_once_and_leaving_one_tab_is_not_leaving(fleet, tokens):
    room = new_room(fleet, tokens)
    watcher = await Client.connect(room_url(fleet, room), tokens["admin"])
    await watcher.next_of("history")
    tab1 = await Client.connect(room_url(fleet, room), tokens["bob"])
    tab2 = await Client.connect(room_url(fleet, room), tokens["bob"])
    assert (await tab2.next_of("online_users"))["users"] == ["admin", "bob"]
    await tab1.close()
    frames = await watcher.drain(0.5)
    assert [f for f in frames if f["type"] == "user_leave"] == []
    await tab2.close()
    await watcher.next_of("user_leave", user="bob")
    await watcher.close()


async def test_reconnect_with_since_gets_exactly_the_missed_messages_in_order(fleet, tokens):
    room = new_room(fleet, tokens)
    bob = await Client.connect(room_url(fleet, room), tokens["bob"])
    await bob.next_of("history")
    alice = await Client.connect(room_url(fleet, room), tokens["alice"])
    await alice.send({"type": "chat_message", "message": "before"})
    await alice.next_of("chat_message", message="before")
    last_seen = (await bob.next_of("chat_message"))["seq"]
    await bob.close()

    for i in range(20):
        await alice.send({"type": "chat_message", "message": f"missed {i}", "client_id": f"m{i}"})
        await asyncio.sleep(0.1)  # within the per-connection rate limit
    for _ in range(20):
        await alice.next_of("chat_message")

    bob = await Client.connect(room_url(fleet, room, since=last_seen), tokens["bob"])
    history = await bob.next_of("history")
    assert [m["message"] for m in history["messages"]] == [f"missed {i}" for i in range(20)]
    assert [m["seq"] for m in history["messages"]] == list(range(last_seen + 1, last_seen + 21))
    await alice.send({"type": "chat_message", "message": "live"})
    live = await bob.next_of("chat_message")
    assert (live["message"], live["seq"]) == ("live", last_seen + 21)
    await alice.close()
    await bob.close()


async def test_resend_with_same_client_id_is_stored_once(fleet, tokens):
    room = new_room(fleet, tokens)
    alice = await Client.connect(room_url(fleet, room), tokens["alice"])
    await alice.next_of("history")
    for _ in range(3):
        await alice.send({"type": "chat_message", "message": "once", "client_id": "same"})
    # Stored once and shown once: the resends are answered under the stored seq,
    # which this socket has already.
    assert (await alice.next_of("chat_message"))["seq"] == 1
    assert [f for f in await alice.drain(1.0) if f["type"] == "chat_message"] == []
    res = httpx.get(
        f"{fleet.url}/api/chat/rooms/{room}/messages/", headers={"Authorization": f"Bearer {tokens['alice']}"}
    )
    assert [m["message"] for m in res.json()["messages"]] == ["once"]
    await alice.close()


async def test_close_codes_for_unknown_room_missing_token_and_foreign_origin(fleet, tokens):
    missing = await Client.connect(room_url(fleet, "no-such-room"), tokens["alice"])
    assert await missing.closed_with() == 4404
    anonymous = await Client.connect(room_url(fleet))
    assert await anonymous.closed_with() == 4401
    bad = await Client.connect(room_url(fleet, token="not-a-jwt"))
    assert await bad.closed_with() == 4401
    with pytest.raises(Exception) as refused:
        await Client.connect(room_url(fleet), tokens["alice"], origin="https://evil.example")
    assert "403" in str(refused.value)
    # The seed's ?token= works, and the token is never written to a log.
    seed_style = await Client.connect(room_url(fleet, token=tokens["bob"]))
    await seed_style.next_of("history")
    await seed_style.close()
    await asyncio.sleep(0.5)
    for log in (fleet.run_dir / "logs").glob("*.log"):
        assert tokens["bob"] not in log.read_text(errors="replace"), log.name
    for log in fleet.run_dir.glob("nginx-*.log"):
        assert tokens["bob"] not in log.read_text(errors="replace"), log.name


async def test_oversized_frame_closes_with_1009_and_others_are_unaffected(fleet, tokens):
    room = new_room(fleet, tokens)
    bob = await Client.connect(room_url(fleet, room), tokens["bob"])
    await bob.next_of("history")
    big = await Client.connect(room_url(fleet, room), tokens["alice"])
    await big.next_of("history")
    await big.send("x" * 70_000)
    assert await big.closed_with() == 1009
    alice = await Client.connect(room_url(fleet, room), tokens["alice"])
    await alice.send({"type": "chat_message", "message": "still here"})
    assert (await bob.next_of("chat_message"))["message"] == "still here"
    await alice.close()
    await bob.close()


async def test_garbage_leaves_the_service_running_and_other_clients_unaffected(fleet, tokens):
    room = new_room(fleet, tokens)
    bob = await Client.connect(room_url(fleet, room), tokens["bob"])
    await bob.next_of("history")
    garbage_kinds = [
        "not json",
        "{",
        "[]",
        "42",
        "null",
        '"str"',
        '{"type": 5}',
        '{"no_type": 1}',
        '{"type": "chat_message"}',
        '{"type": "chat_message", "message": 7}',
        '{"type": "chat_message", "message": ""}',
        '{"type": "unknown_thing"}',
        '{"type": "__init__"}',
        '{"type": "chat_message", "message": "x", "client_id": {"a": 1}}',
        b"\x00\xff binary",
        '{"type": "chat_message", "message": "' + "y" * 5000 + '"}',
    ]
    errors = 0
    sent = 0
    # Several sockets, so the per-connection rate limit is part of what is exercised
    # but not all of it.
    for round_ in range(10):
        attacker = await Client.connect(room_url(fleet, room), tokens["alice"])
        await attacker.next_of("history")
        for i in range(100):
            await attacker.send(garbage_kinds[(round_ * 100 + i) % len(garbage_kinds)])
            sent += 1
        frames = await attacker.drain(0.5)
        errors += sum(1 for f in frames if f["type"] == "error")
        await attacker.close()
    assert sent == 1000
    assert errors == 1000  # every bad frame is answered, with an error or rate_limited
    alice = await Client.connect(room_url(fleet, room), tokens["alice"])
    await alice.send({"type": "chat_message", "message": "after the storm"})
    assert (await bob.next_of("chat_message"))["message"] == "after the storm"
    assert all(f["type"] != "error" for f in bob.frames)
    await alice.close()
    await bob.close()


async def test_restarting_chat_drops_no_socket_and_delivers_what_was_sent_meanwhile(fleet, tokens):
    room = new_room(fleet, tokens)
    alice = await Client.connect(room_url(fleet, room), tokens["alice"])
    bob = await Client.connect(room_url(fleet, room), tokens["bob"])
    await alice.next_of("history")
    await bob.next_of("history")
    fleet.ctl("stop", "chat-inbox", "chat-http")
    await alice.send({"type": "chat_message", "message": "during restart", "client_id": "r1"})
    await asyncio.sleep(0.5)
    fleet.ctl("start", "chat-inbox", "chat-http")
    got = await bob.next_of("chat_message", timeout=30)
    assert got["message"] == "during restart"
    assert (await alice.next_of("chat_message"))["client_id"] == "r1"
    await alice.send({"type": "chat_message", "message": "after restart"})
    assert (await bob.next_of("chat_message"))["message"] == "after restart"
    await alice.close()
    await bob.close()


async def test_a_silent_service_gives_1013_not_a_hang(fleet, tokens):
    fleet.ctl("stop", "chat-inbox")
    try:
        client = await Client.connect(room_url(fleet), tokens["alice"])
        assert await client.closed_with(timeout=15) == 1013
    finally:
        fleet.ctl("start", "chat-inbox")
        fleet.wait_ready(__import__("time").time() + 30, ["chat-inbox"])


async def test_users_of_a_crashed_gateway_leave_the_online_list(fleet, tokens):
    """A gateway killed with SIGKILL says no goodbye; presence expiry does, for it."""
    room = new_room(fleet, tokens)
    direct = {
        p: f"ws://127.0.0.1:{fleet.program(p).http_port}/ws/chat/{room}/" for p in ("ws-gateway-0", "ws-gateway-1")
    }
    watcher = await Client.connect(direct["ws-gateway-1"], tokens["alice"])
    await watcher.next_of("history")
    ghost = await Client.connect(direct["ws-gateway-0"], tokens["bob"])
    await ghost.next_of("history")
    await watcher.next_of("online_users", users=["alice", "bob"])
    fleet.kill("ws-gateway-0")
    # PRESENCE_TTL_SECONDS is 6 in the e2e fleet, the sweep runs every 2 s.
    await watcher.next_of("user_leave", timeout=20, user="bob")
    await watcher.next_of("online_users", users=["alice"])
    await watcher.close()
    fleet.wait_ready(__import__("time").time() + 30, ["ws-gateway-0"])


async def test_each_process_reports_its_metrics(fleet, tokens):
    room = new_room(fleet, tokens)
    client = await Client.connect(room_url(fleet, room), tokens["alice"])
    await client.next_of("history")
    await client.send({"type": "chat_message", "message": "counted"})
    await client.next_of("chat_message")
    await client.send("not json")
    await client.next_of("error")

    def scrape(program):
        return httpx.get(f"http://127.0.0.1:{fleet.program(program).metrics_port}/metrics").text

    gateways = scrape("ws-gateway-0") + scrape("ws-gateway-1")
    assert 'switchboard_gateway_connections{route="chat"} 1.0' in gateways
    assert 'switchboard_gateway_frame_errors_total{code="invalid_json",route="chat"}' in gateways
    inbox = scrape("chat-inbox")
    assert 'switchboard_inbox_commands_total{outcome="ok",service="chat",type="frame.chat_message"}' in inbox
    assert "switchboard_inbox_handling_seconds_bucket" in inbox
    await client.close()
