"""Rate limits: a token bucket per connection (in process), per user and per API key (in Redis).

The per-user bucket is one Lua script, so reading, refilling and spending happen
atomically in Redis and two gateway processes share one budget (the seed's
get-then-set in the cache lets concurrent frames through). Redis's own clock is used,
so gateways with skewed clocks agree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from redis.asyncio import Redis

from switchboard.config import env_float

# Returns {allowed (0/1), seconds to wait as a string}. Keys expire once a full bucket
# would have refilled, so idle users cost nothing.
TOKEN_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0


class RedisTokenBucket:
    """A bucket per key shared by every process: `await take(key)`."""

    def __init__(self, redis: Redis, rate: float, burst: float, prefix: str = "sb:rate:"):
        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self._script = redis.register_script(TOKEN_BUCKET_LUA)

    async def take(self, key: str, cost: float = 1) -> Decision:
        allowed, wait = await self._script(keys=[self.prefix + key], args=[self.rate, self.burst, cost])
        return Decision(bool(int(allowed)), float(wait))


@dataclass(slots=True)
class LocalTokenBucket:
    """A bucket for one connection; the clock is injectable for tests."""

    rate: float
    burst: float
    clock: callable = time.monotonic
    tokens: float = field(default=-1.0)
    stamp: float = field(default=0.0)

    def take(self, cost: float = 1) -> Decision:
        now = self.clock()
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return Decision(True)
        return Decision(False, (cost - self.tokens) / self.rate)


def connection_rate(route) -> tuple[float, float]:
    """(frames per second, burst) of one connection on `route`: the route's own, from
    routes.toml, times RATE_ROUTE_SCALE, or the RATE_CONN_* defaults."""
    scale = env_float("RATE_ROUTE_SCALE")
    rate = route.rate_per_second * scale if route.rate_per_second else env_float("RATE_CONN_PER_SECOND")
    burst = route.rate_burst * scale if route.rate_burst else env_float("RATE_CONN_BURST")
    return rate, burst


class SyncRedisTokenBucket:
    """RedisTokenBucket for blocking code (the REST views' per-API-key limit): the same
    script, so the same bucket semantics, on a redis-py blocking client."""

    def __init__(self, redis, rate: float, burst: float, prefix: str = "sb:rate:"):
        self.rate = rate
        self.burst = burst
        self.prefix = prefix
        self._script = redis.register_script(TOKEN_BUCKET_LUA)

    def take(self, key: str, cost: float = 1) -> Decision:
        allowed, wait = self._script(keys=[self.prefix + key], args=[self.rate, self.burst, cost])
        return Decision(bool(int(allowed)), float(wait))
