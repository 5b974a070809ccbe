"""A crowd entering one chat room, through nginx: hundreds of distinct users connect at
once, as after a deploy. Every one is accepted with its own history and an online list
that includes itself; a member already in the room hears of each arrival and departure
exactly once, in a handful of coalesced frames instead of one frame per user; and a
connect to another room is not held behind the crowd."""

from __future__ import annotations

import asyncio

from test_chat import new_room, room_url
from wsclient import Client

from switchboard.tokens import Identity, issue

CROWD = 300
IN_FLIGHT = 50  # handshakes at once


def crowd_tokens(fleet) -> dict[str, str]:
    keys = fleet.setting("SWITCHBOARD_JWT_KEYS")
    return {f"crowd{i:03d}": issue(Identity(880_000 + i, f"crowd{i:03d}", False), keys=keys) for i in range(CROWD)}


async def announced(watcher: Client, kind: str, want: int) -> tuple[list[str], int]:
    """Names the watcher is told of in `kind` frames until it has `want` (or the room is
    quiet for 5 s), and how many frames that took."""
    names, frames = [], 0
    while len(names) < want:
        try:
            got = await watcher.next_of(kind, timeout=5)
        except TimeoutError:
            break
        frames += 1
        names += got.get("users", [got["user"]])
    return names, frames


async def test_a_crowd_into_one_room_is_accepted_and_announced_once_each_in_few_frames(fleet, tokens):
    room, other = new_room(fleet, tokens), new_room(fleet, tokens)
    watcher = await Client.connect(room_url(fleet, room), tokens["alice"])
    await watcher.next_of("history")
    await watcher.next_of("user_join", user="alice")  # her own, before the crowd's
    crowd = crowd_tokens(fleet)
    sem = asyncio.Semaphore(IN_FLIGHT)

    async def enter(name: str, tok: str) -> Client:
        async with sem:
            client = await Client.connect(room_url(fleet, room), tok)
            await client.next_of("history", timeout=30)
            online = await client.next_of("online_users", timeout=30)
            assert name in online["users"] and "alice" in online["users"]
            return client

    entering = asyncio.gather(*(enter(n, t) for n, t in crowd.items()))
    # Meanwhile bob opens another room: the crowd must not hold his connect back.
    bob = await Client.connect(room_url(fleet, other), tokens["bob"])
    assert (await bob.next_of("history", timeout=10))["messages"] == []
    clients = await entering

    joined, join_frames = await announced(watcher, "user_join", CROWD)
    assert sorted(joined) == sorted(crowd)  # each arrival once
    assert join_frames <= CROWD // 10  # coalesced: one frame per user would be 300
    last = await watcher.next_of("online_users", timeout=10, users=sorted([*crowd, "alice"]))
    assert len(last["users"]) == CROWD + 1

    await asyncio.gather(*(c.close() for c in clients))
    left, leave_frames = await announced(watcher, "user_leave", CROWD)
    assert sorted(left) == sorted(crowd)  # each departure once
    assert leave_frames <= CROWD // 10
    await watcher.next_of("online_users", timeout=10, users=["alice"])
    await asyncio.gather(watcher.close(), bob.close())
