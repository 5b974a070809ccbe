"""The inbox backlog gauge on the real fleet: chat's HTTP process reports the commands
waiting for a stopped chat inbox worker, and zero once a restarted worker has handled
them (and every one of them reached the room)."""

from __future__ import annotations

import asyncio
import time

from metricsutil import sample
from test_chat import new_room, room_url
from wsclient import Client

BACKLOG = "switchboard_inbox_backlog_commands"
N = 7  # below the e2e connection burst, so no frame is refused by a rate limit


async def backlog_becomes(fleet, expected: int, timeout: float = 30) -> float:
    """Poll chat-http's /metrics until the chat backlog (all shards) equals `expected`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(sample, fleet, "chat-http", BACKLOG, service="chat")
        if value == expected or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.3)


async def test_backlog_gauge_counts_commands_waiting_for_a_stopped_worker_then_zero(fleet, tokens):
    room = new_room(fleet, tokens)
    alice = await Client.connect(room_url(fleet, room), tokens["alice"])
    await alice.next_of("history")
    assert await backlog_becomes(fleet, 0) == 0

    fleet.ctl("stop", "chat-inbox")
    try:
        for i in range(N):
            await alice.send({"type": "chat_message", "message": f"queued {i}", "client_id": f"q{i}"})
        assert await backlog_becomes(fleet, N) == N
    finally:
        fleet.ctl("start", "chat-inbox")
        fleet.wait_ready(time.time() + 30, ["chat-inbox"])

    assert await backlog_becomes(fleet, 0) == 0
    got = [(await alice.next_of("chat_message", timeout=15))["message"] for _ in range(N)]
    assert got == [f"queued {i}" for i in range(N)]  # drained in order, none lost
    await alice.close()
