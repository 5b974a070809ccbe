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
import time

from redis.asyncio import Redis

from switchboard import redisconn
from switchboard.config import env_float
from switchboard.presence import Presence
from switchboard.ratelimit import Decision, RedisTokenBucket

log = logging.getLogger(__name__)

# Frames spend from a local lease of the user's shared budget, and Redis is asked once
# per lease, not once per frame: a round trip per frame put each frame of a busy gateway
# behind a full turn of its event loop (p50 of a 1,000-member fan-out:
# bench/results/hot-path-changes.md). A lease is what the user may send in LEASE_SECONDS, so across
# gateways the limit is exceeded by at most one lease per process; leftovers expire.
LEASE_SECONDS = 0.25
LEASE_TTL_SECONDS = 1.0


class Registry:
    def __init__(self):
        self.open: dict[str, object] = {}
        self._redis: Redis | None = None
        self._heartbeat: asyncio.Task | None = None
        self.leases: dict[int, tuple[float, float]] = {}  # user id -> (tokens, expires)

    def _setup(self) -> None:
        if self._redis is None:
            self._redis = redisconn.client()
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
        now = time.monotonic()
        tokens, expires = self.leases.get(user_id, (0.0, 0.0))
        if tokens >= 1 and now < expires:
            self.leases[user_id] = (tokens - 1, expires)
            return Decision(True)
        bucket = self.user_budget
        lease = int(max(1, min(bucket.burst, bucket.rate * LEASE_SECONDS)))
        key = f"user:{user_id}"
        try:
            decision = await bucket.take(key, cost=lease)
            if not decision.allowed and lease > 1:  # near the limit: frame by frame
                lease = 1
                decision = await bucket.take(key, cost=1)
        except Exception:
            # Redis away: fail open; the per-connection bucket still holds each socket.
            return Decision(True)
        if decision.allowed and lease > 1:
            self.leases[user_id] = (lease - 1, time.monotonic() + LEASE_TTL_SECONDS)
        else:
            self.leases.pop(user_id, None)
        return decision

    async def _beat(self) -> None:
        interval = env_float("PRESENCE_HEARTBEAT_SECONDS")
        while True:
            # Jitter, so gateways restarted together do not refresh in lockstep.
            await asyncio.sleep(interval * random.uniform(0.8, 1.0))
            now = time.monotonic()
            self.leases = {user: lease for user, lease in self.leases.items() if lease[1] > now}
            try:
                entries = [(c.topics, c.member) for c in list(self.open.values())]
                if entries:
                    await self.presence.refresh(entries)
            except Exception:
                log.exception("presence heartbeat failed")


registry = Registry()
