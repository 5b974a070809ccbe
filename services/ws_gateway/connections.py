"""This process's open sockets: presence heartbeats, socket caps and the shared per-user budget.

One registry per gateway process. It writes presence when a socket opens and removes
it on close, and one task refreshes every socket's presence each
PRESENCE_HEARTBEAT_SECONDS in a single pipeline, so a process that dies stops
refreshing and its sockets expire from the online lists by themselves.

Socket caps (WS_MAX_SOCKETS_PER_USER, WS_MAX_SOCKETS_PER_IP) count open sockets across
every gateway in Redis: one sorted set per user and per client IP, a member per socket
scored with the time it expires. A socket is added (if under both caps, atomically)
when it opens and removed when it closes; the same heartbeat pushes its expiry on, so
the count of a gateway that died without closing its sockets drops by itself within
PRESENCE_TTL_SECONDS, the time its clients take to notice and reconnect anyway.

Every SESSION_RECHECK_SECONDS the sessions of cookie sockets are checked again (one
lookup per distinct session), and the sockets of an ended session are closed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from redis.asyncio import Redis
from redis.exceptions import RedisError

from switchboard import redisconn
from switchboard.closecodes import CloseCode
from switchboard.config import env_float, env_int
from switchboard.presence import Presence
from switchboard.ratelimit import Decision, RedisTokenBucket
from ws_gateway import wsauth

log = logging.getLogger(__name__)

# Frames spend from a local lease of the user's shared budget, and Redis is asked once
# per lease, not once per frame: a round trip per frame put each frame of a busy gateway
# behind a full turn of its event loop (p50 of a 1,000-member fan-out:
# bench/results/hot-path-changes.md). A lease is what the user may send in LEASE_SECONDS, so across
# gateways the limit is exceeded by at most one lease per process; leftovers expire.
LEASE_SECONDS = 0.25
LEASE_TTL_SECONDS = 1.0

CAPS_PREFIX = "sb:sockets:"
# KEYS: the user's and the IP's sets; ARGV: socket, ttl seconds, user cap, IP cap.
# Returns 0 (added), 1 (user at its cap) or 2 (IP at its cap). Expired members (of a
# dead gateway) are dropped first, so they never hold a slot past their expiry.
ADD_SOCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then return i end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[1])
  redis.call('EXPIRE', key, math.ceil(ttl) + 1)
end
return 0
"""
# KEYS: sets; ARGV: ttl, then the socket of each key. Pushes on the expiry of sockets
# still present (XX: one removed meanwhile is not brought back).
REFRESH_SOCKETS_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + ttl, ARGV[i + 1])
  redis.call('EXPIRE', key, math.ceil(ttl) + 1)
end
return 0
"""


def cap_keys(user_id: int, ip: str) -> list[str]:
    return [f"{CAPS_PREFIX}user:{user_id}", f"{CAPS_PREFIX}ip:{ip}"]


class Registry:
    def __init__(self):
        self.open: dict[str, object] = {}
        self._redis: Redis | None = None
        self._heartbeat: asyncio.Task | None = None
        self._sessions: asyncio.Task | None = None
        self.leases: dict[int, tuple[float, float]] = {}  # user id -> (tokens, expires)

    def _setup(self) -> None:
        if self._redis is None:
            self._redis = redisconn.client()
            self.presence = Presence(self._redis)
            self.user_budget = RedisTokenBucket(
                self._redis, env_float("RATE_USER_PER_SECOND"), env_float("RATE_USER_BURST")
            )
            self._add_socket = self._redis.register_script(ADD_SOCKET_LUA)
            self._refresh_sockets = self._redis.register_script(REFRESH_SOCKETS_LUA)
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.ensure_future(self._beat())
        if self._sessions is None or self._sessions.done():
            self._sessions = asyncio.ensure_future(self._recheck_sessions())

    async def add(self, consumer) -> None:
        self._setup()
        self.open[consumer.channel_name] = consumer
        await self.presence.add(consumer.topics, consumer.member)

    async def admit(self, consumer, user_id: int, ip: str) -> str | None:
        """Count a new socket against its user's and IP's caps: None if admitted,
        else "user" or "ip", the cap it would exceed. Redis away: admitted (fail open,
        as the rate limit; the caps protect capacity, not access)."""
        self._setup()
        keys = cap_keys(user_id, ip)
        try:
            over = await self._add_socket(
                keys=keys,
                args=[consumer.channel_name, env_int("PRESENCE_TTL_SECONDS"), *self._caps()],
            )
        except (RedisError, OSError):
            log.warning("socket caps: Redis unavailable, admitting %s", consumer.channel_name)
            return None
        if int(over):
            return ("user", "ip")[int(over) - 1]
        consumer.cap_keys = keys
        return None

    @staticmethod
    def _caps() -> tuple[int, int]:
        return env_int("WS_MAX_SOCKETS_PER_USER"), env_int("WS_MAX_SOCKETS_PER_IP")

    async def release(self, consumer) -> None:
        """Give back the socket's slots (its close); they expire anyway if this fails."""
        keys = getattr(consumer, "cap_keys", None)
        if not keys:
            return
        consumer.cap_keys = None
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.zrem(key, consumer.channel_name)
                await pipe.execute()
        except Exception:
            log.warning("socket caps: could not release %s", consumer.channel_name)

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
            try:
                await self._refresh_caps()
            except Exception:
                log.exception("socket caps heartbeat failed")

    async def _recheck_sessions(self) -> None:
        while True:
            await asyncio.sleep(env_float("SESSION_RECHECK_SECONDS"))
            try:
                await self.recheck_sessions()
            except Exception:
                log.exception("session recheck failed")

    async def recheck_sessions(self) -> None:
        """Close (4401) every cookie socket whose session no longer names its user:
        the password changed (Django's session auth hash), a logout, an expiry."""
        by_key: dict[str, list] = {}
        for consumer in list(self.open.values()):
            key = getattr(consumer, "session_key", None)
            if key:
                by_key.setdefault(key, []).append(consumer)
        if not by_key:
            return
        for key in await wsauth.sessions_ended(set(by_key)):
            for consumer in by_key[key]:
                await consumer.close(CloseCode.UNAUTHORIZED, "session_ended")

    async def _refresh_caps(self) -> None:
        keys, members = [], []
        for consumer in list(self.open.values()):
            for key in getattr(consumer, "cap_keys", None) or ():
                keys.append(key)
                members.append(consumer.channel_name)
        if keys:
            await self._refresh_sockets(keys=keys, args=[env_int("PRESENCE_TTL_SECONDS"), *members])


registry = Registry()
