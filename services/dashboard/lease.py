"""A lease in Redis: at most one holder at a time, and it moves when the holder dies.

The holder renews it every tick; a holder that stops renewing (crashed, frozen,
partitioned from Redis) loses it when the TTL runs out, and the next standby to ask
gets it. Renewing and taking are one Lua script, so two standbys never both win, and
a holder never extends a lease someone else has taken meanwhile. Release on a clean
shutdown hands over at once instead of after the TTL.
"""

from __future__ import annotations

import os
import socket
import uuid

from redis.asyncio import Redis

# 1: renewed (we held it), 2: acquired (it was free), 0: someone else holds it.
ACQUIRE_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

RENEWED, ACQUIRED, HELD_ELSEWHERE = 1, 2, 0


def default_owner() -> str:
    """host:pid:random, so an operator reading the key knows which process holds it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    def __init__(self, redis: Redis, key: str, ttl_seconds: float, owner: str | None = None):
        self.redis = redis
        self.key = key
        self.ttl_ms = int(ttl_seconds * 1000)
        self.owner = owner or default_owner()
        self._acquire = redis.register_script(ACQUIRE_LUA)
        self._release = redis.register_script(RELEASE_LUA)

    async def acquire(self) -> int:
        """Renew or take the lease: RENEWED, ACQUIRED or HELD_ELSEWHERE."""
        return int(await self._acquire(keys=[self.key], args=[self.owner, self.ttl_ms]))

    async def release(self) -> bool:
        """Give the lease up if we hold it (a clean shutdown)."""
        return bool(await self._release(keys=[self.key], args=[self.owner]))

    async def holder(self) -> str | None:
        raw = await self.redis.get(self.key)
        return raw.decode() if raw is not None else None
