"""This process's open sockets: presence heartbeats and the shared per-user budget.

One registry per gateway process. It writes presence when a socket opens and removes
it on close, and one task refreshes every socket's presence each
PRESENCE_HEARTBEAT_SECONDS in a single pipeline, so a process that dies stops
refreshing and its sockets expire from the online lists by themselves.
"""

from __future__ import annotations

import asyncio
import logging
import random

from redis.asyncio import Redis

from switchboard.config import env, env_float, env_int
from switchboard.presence import Presence
from switchboard.ratelimit import Decision, RedisTokenBucket

log = logging.getLogger(__name__)


class Registry:
    def __init__(self):
        self.open: dict[str, object] = {}
        self._redis: Redis | None = None
        self._heartbeat: asyncio.Task | None = None

    def _setup(self) -> None:
        if self._redis is None:
            self._redis = Redis.from_url(env("REDIS_URL"))
            self.presence = Presence(self._redis)
            self.user_budget = RedisTokenBucket(
                self._redis, env_float("RATE_USER_PER_SECOND"), env_float("RATE_USER_BURST")
            )
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.ensure_future(self._beat())

    async def add(self, consumer) -> None:
        self._setup()
        self.open[consumer.channel_name] = consumer
        await self.presence.add(consumer.topics, consumer.member)

    async def remove(self, consumer) -> None:
        self.open.pop(consumer.channel_name, None)
        try:
            await self.presence.remove(consumer.topics, consumer.member)
        except Exception:  # Redis away: the entry expires by itself
            log.warning("presence: could not remove %s", consumer.channel_name)

    async def take_user_budget(self, user_id: int) -> Decision:
        try:
            return await self.user_budget.take(f"user:{user_id}")
        except Exception:
            # Redis away: fail open; the per-connection bucket still holds each socket.
            return Decision(True)

    async def _beat(self) -> None:
        interval = env_int("PRESENCE_HEARTBEAT_SECONDS")
        while True:
            # Jitter, so gateways restarted together do not refresh in lockstep.
            await asyncio.sleep(interval * random.uniform(0.8, 1.0))
            try:
                entries = [(c.topics, c.member) for c in list(self.open.values())]
                if entries:
                    await self.presence.refresh(entries)
            except Exception:
                log.exception("presence heartbeat failed")


registry = Registry()
