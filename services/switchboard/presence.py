"""Who is connected, shared by every process through Redis.

One sorted set per topic (a route's group such as ``chat.room.lobby``, ``route:chat``,
and ``all``); each member is one connection, ``<conn>|<user id>|<username>``, scored by
the time it expires. ws-gateway adds a connection before the service is asked about
it, refreshes all of its connections every PRESENCE_HEARTBEAT_SECONDS, and removes
them on close; a crashed process's entries simply expire. Readers count distinct
users, so several tabs of one user count once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from redis.asyncio import Redis

from switchboard import redisconn
from switchboard.config import env_int

PREFIX = "sb:presence:"
ALL = "all"


@dataclass(frozen=True, slots=True)
class Member:
    conn: str
    user_id: int
    username: str

    def encode(self) -> str:
        return f"{self.conn}|{self.user_id}|{self.username}"

    @classmethod
    def decode(cls, raw: bytes | str) -> Member:
        text = raw.decode() if isinstance(raw, bytes) else raw
        conn, user_id, username = text.split("|", 2)
        return cls(conn, int(user_id), username)


def route_topic(route: str) -> str:
    return f"route:{route}"


class Presence:
    def __init__(self, redis: Redis, ttl: int | None = None):
        self.redis = redis
        self.ttl = env_int("PRESENCE_TTL_SECONDS") if ttl is None else ttl

    async def add(self, topics: Iterable[str], member: Member) -> None:
        expires = time.time() + self.ttl
        async with self.redis.pipeline(transaction=False) as pipe:
            for topic in topics:
                pipe.zadd(PREFIX + topic, {member.encode(): expires})
            await pipe.execute()

    async def refresh(self, entries: Iterable[tuple[Iterable[str], Member]]) -> None:
        """One round trip for every connection of a process (the heartbeat), and one
        ZADD per topic: every socket of a gateway is in `all` and its route's topic, so
        a command per socket and topic made the heartbeat of 10,000 sockets 30,000
        commands for redis-py to build (docs/performance.md)."""
        expires = time.time() + self.ttl
        by_topic: dict[str, dict[str, float]] = {}
        for topics, member in entries:
            encoded = member.encode()
            for topic in topics:
                by_topic.setdefault(topic, {})[encoded] = expires
        async with self.redis.pipeline(transaction=False) as pipe:
            for topic, mapping in by_topic.items():
                pipe.zadd(PREFIX + topic, mapping)
            await pipe.execute()

    async def remove(self, topics: Iterable[str], member: Member) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for topic in topics:
                pipe.zrem(PREFIX + topic, member.encode())
            await pipe.execute()

    async def members(self, topic: str) -> list[Member]:
        """Live connections of a topic; expired ones are dropped on the way."""
        key = PREFIX + topic
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zrangebyscore(key, now, "+inf")
            _, raw = await pipe.execute()
        return [Member.decode(m) for m in raw]

    async def users(self, topic: str) -> list[str]:
        """Distinct usernames online in a topic, sorted."""
        return sorted({m.username for m in await self.members(topic)})

    async def user_ids(self, topic: str) -> set[int]:
        return {m.user_id for m in await self.members(topic)}

    async def is_present(self, topic: str, user_id: int, except_conn: str = "") -> bool:
        return any(m.user_id == user_id and m.conn != except_conn for m in await self.members(topic))

    async def has_member(self, topic: str, member: Member) -> bool:
        """Is this connection live in the topic? One ZSCORE, whatever the topic's size."""
        expires = await self.redis.zscore(PREFIX + topic, member.encode())
        return expires is not None and expires > time.time()

    async def live(self, topic: str, members: list[Member]) -> list[bool]:
        """Which of these connections are live in the topic: one ZMSCORE for all of them
        (a storm's connects into a room are checked in one command, not one each)."""
        if not members:
            return []
        scores = await self.redis.zmscore(PREFIX + topic, [m.encode() for m in members])
        now = time.time()
        return [score is not None and score > now for score in scores]

    async def conns(self, topic: str) -> set[str]:
        """Connection ids live in a topic (the sweeper's read: once per heartbeat)."""
        key = PREFIX + topic
        raw = await self.redis.zrangebyscore(key, time.time(), "+inf")
        return {(m.decode() if isinstance(m, bytes) else m).split("|", 1)[0] for m in raw}

    async def has_conn(self, topic: str, conn: str) -> bool:
        return any(m.conn == conn for m in await self.members(topic))

    async def count_connections(self, topic: str) -> int:
        return await self.redis.zcount(PREFIX + topic, time.time(), "+inf")


_shared: Presence | None = None


def shared() -> Presence:
    """This process's Presence on the main Redis (services' inbox workers read through it).
    Tests reset `_shared` between event loops: a Redis client belongs to its loop."""
    global _shared
    if _shared is None:
        _shared = Presence(redisconn.client())
    return _shared
