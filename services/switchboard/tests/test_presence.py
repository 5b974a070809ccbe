"""Presence: several tabs count once, and a dead process's sockets expire."""

import asyncio

from redis.asyncio import Redis

from switchboard.presence import Member, Presence


async def test_tabs_of_one_user_count_once_and_leave_only_with_the_last(redis_url):
    presence = Presence(Redis.from_url(redis_url), ttl=30)
    tab1, tab2 = Member("c1", 1, "alice"), Member("c2", 1, "alice")
    await presence.add(["room"], tab1)
    await presence.add(["room"], tab2)
    await presence.add(["room"], Member("c3", 2, "bob"))
    assert await presence.users("room") == ["alice", "bob"]
    assert await presence.count_connections("room") == 3
    await presence.remove(["room"], tab1)
    assert await presence.is_present("room", 1)
    await presence.remove(["room"], tab2)
    assert not await presence.is_present("room", 1)
    assert await presence.users("room") == ["bob"]


async def test_entries_not_refreshed_expire(redis_url):
    presence = Presence(Redis.from_url(redis_url), ttl=1)
    alive, dead = Member("a", 1, "alice"), Member("d", 2, "bob")
    await presence.add(["all"], alive)
    await presence.add(["all"], dead)
    await asyncio.sleep(0.6)
    await presence.refresh([(["all"], alive)])  # only alice's process is still beating
    await asyncio.sleep(0.6)
    assert await presence.users("all") == ["alice"]


async def test_a_heartbeat_refreshes_every_socket_of_every_topic(redis_url):
    presence = Presence(Redis.from_url(redis_url), ttl=60)
    members = [Member(f"c{i}", i % 3, f"u{i % 3}") for i in range(9)]
    await presence.refresh([(["all", f"room:{m.user_id}"], m) for m in members])
    assert {m.conn for m in await presence.members("all")} == {m.conn for m in members}
    assert await presence.users("room:1") == ["u1"]
    assert await presence.count_connections("room:2") == 3
