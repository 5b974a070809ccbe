"""The login throttle: failed logins per username and per client IP, shared in Redis.

POST /api/auth/token/ and the login page ask `check()` before they look at a password
and call `failed()` after a wrong one. Each username and each client IP (clientip.py:
the proxy's X-Real-IP, from a trusted proxy only) has a bucket of
LOGIN_FAILURES_PER_USERNAME / LOGIN_FAILURES_PER_IP failures that refills over
LOGIN_THROTTLE_SECONDS; an empty bucket answers 429 with Retry-After, right password or
not, so guessing costs the window. Successful logins cost nothing, so a user who
types their password right is never slowed by others on the same NAT unless those
fail LOGIN_FAILURES_PER_IP times. Redis away: not throttled (logged), as the
gateway's other limits.
"""

from __future__ import annotations

import logging
import math

from redis.exceptions import RedisError

from switchboard import redisconn
from switchboard.config import env_float, env_int

log = logging.getLogger(__name__)

PREFIX = "sb:login:"
# KEYS: buckets; ARGV: cost (0: only ask, 1: spend one failure), then rate and burst of
# each key. Returns the seconds until every bucket holds a failure again ("0": now).
LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cost = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  if cost > 0 then
    tokens = math.max(0, tokens - cost)
    redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
    redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
  end
  if tokens < 1 then wait = math.max(wait, (1 - tokens) / rate) end
end
return tostring(wait)
"""

_client = None
_script = None


def _run(cost: int, username: str, ip: str) -> float:
    global _client, _script
    if _script is None:
        _client = redisconn.sync_client(socket_timeout=2, socket_connect_timeout=2)
        _script = _client.register_script(LUA)
    window = env_float("LOGIN_THROTTLE_SECONDS")
    per_name, per_ip = env_int("LOGIN_FAILURES_PER_USERNAME"), env_int("LOGIN_FAILURES_PER_IP")
    keys = [f"{PREFIX}user:{username.strip().lower()[:150]}", f"{PREFIX}ip:{ip}"]
    args = [cost, per_name / window, per_name, per_ip / window, per_ip]
    try:
        return float(_script(keys=keys, args=args))
    except (RedisError, OSError):
        log.warning("login throttle: Redis unavailable, not throttling")
        return 0.0


def check(username: str, ip: str) -> int:
    """Seconds this login must wait (0: go on and check the password)."""
    wait = _run(0, username, ip)
    return math.ceil(wait) if wait > 0 else 0


def failed(username: str, ip: str) -> None:
    """Count a wrong password against the username and the IP."""
    _run(1, username, ip)
