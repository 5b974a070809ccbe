"""The user directory on Redis: username → (id, is_staff), written by ws-gateway, read by all.

Why it exists: a staff `POST /api/notifications/` names its user by username, and every
such call asked ws-gateway by REST (`/api/auth/users/`), about 6.5 of the 14 ms of fleet
CPU a notification cost at 100/s (issue 21). With the directory it is one HGET.

Why it is exact. A username can move: a shop user is renamed by its token, a freed name
is taken by another user. A cache that answered with a stale id would notify the wrong
person, so the directory is not a cache filled by readers:

* ws-gateway writes it from User saves and deletes (ws_gateway/directory.py), in two
  steps around the database commit. Before the commit every name the write touches (the
  old and the new) is marked UNSETTLED; after it each gets its final value: `<id>:<staff>`
  for the name's holder, FREE for a name nobody holds now. A reader that finds a mark, or
  no field, asks ws-gateway as before (the database answers); FREE answers "no such
  user". A write that cannot mark (Redis away) fails: no user is renamed while the
  directory still names them. A write that rolls back, or whose final step fails, leaves
  its marks: readers ask ws-gateway (slower, never wrong), and ws-gateway's answer
  settles a mark older than STALE_MARK_SECONDS (`settle_stale`; no write is open that long).
* After Redis loses the hash (a restart without persistence) every lookup misses and
  asks ws-gateway, which refills the directory from its database (`fill`): only fields
  that are absent (HSETNX, so never over a mark or a value written after its snapshot),
  and only while EPOCH is the one it read before the snapshot (a Redis that restarts
  mid-fill makes it stop, not write an old snapshot into the new one).
* `QuerySet.update()` and raw SQL bypass the model's signals: after such a change run
  `python -m django user_directory --rebuild` in ws-gateway.

Memory: one hash field per user, about 60 bytes (a million users: ~60 MB of Redis).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import weakref
from dataclasses import dataclass

import redis
import redis.asyncio
from redis.exceptions import RedisError

from switchboard import metrics, redisconn

log = logging.getLogger(__name__)

KEY = "sb:userdir"
EPOCH = "sb:userdir:epoch"  # this Redis's incarnation of the directory
FILLED = "sb:userdir:filled"  # the epoch a fill completed in (absent or other: not filled)
FILL_LOCK = "sb:userdir:fill-lock"
FREE = "-"
MARK = "?"  # followed by the Redis time (seconds) it was set at
STALE_MARK_SECONDS = 30
# Reads are on the hot path: a Redis that does not answer falls back to ws-gateway.
TIMEOUT = 2.0


class Unavailable(Exception):
    """Redis did not take a directory write: the user write that needed it must not commit."""


@dataclass(frozen=True)
class Entry:
    id: int
    is_staff: bool

    def answer(self, username: str) -> dict:
        """The shape of ws-gateway's `/api/auth/users/` answer."""
        return {"id": self.id, "username": username, "is_staff": self.is_staff}


# What a lookup found: an Entry; FREE (nobody holds the name); None (ask ws-gateway).
Found = Entry | str | None


def value_of(user_id: int, is_staff: bool) -> str:
    return f"{user_id}:{int(bool(is_staff))}"


def parse(raw: bytes | str | None) -> Found:
    if raw is None:
        metrics.USER_DIRECTORY_LOOKUPS.labels("miss").inc()
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    if text == FREE:
        metrics.USER_DIRECTORY_LOOKUPS.labels("free").inc()
        return FREE
    uid, sep, staff = text.partition(":")
    if sep and uid.isdigit() and staff in ("0", "1"):
        metrics.USER_DIRECTORY_LOOKUPS.labels("hit").inc()
        return Entry(int(uid), staff == "1")
    metrics.USER_DIRECTORY_LOOKUPS.labels("unsettled").inc()
    return None


# ------------------------------------------------------------------ readers ----
_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = weakref.WeakKeyDictionary()
_sync: redis.Redis | None = None


def _async_client() -> redis.asyncio.Redis:
    loop = asyncio.get_running_loop()
    client = _async.get(loop)
    if client is None:
        client = _async[loop] = redisconn.client(socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    return client


def _sync_client() -> redis.Redis:
    global _sync
    if _sync is None:
        _sync = redisconn.sync_client(socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
    return _sync


def reset() -> None:
    """Forget the clients (tests: REDIS_URL changed)."""
    global _sync
    _sync = None
    _async.clear()


async def lookup_async(username: str) -> Found:
    try:
        raw = await _async_client().hget(KEY, username)
    except (RedisError, OSError):
        metrics.USER_DIRECTORY_LOOKUPS.labels("error").inc()
        return None
    return parse(raw)


def lookup(username: str) -> Found:
    try:
        raw = _sync_client().hget(KEY, username)
    except (RedisError, OSError):
        metrics.USER_DIRECTORY_LOOKUPS.labels("error").inc()
        return None
    return parse(raw)


# ------------------------------------------------------------------ writers ----
# Each script reads the Redis clock, so every ws-gateway's marks are dated by one clock.
_MARK = """
local t = redis.call('TIME')[1]
for i, name in ipairs(ARGV) do redis.call('HSET', KEYS[1], name, '?' .. t) end
return t
"""
# A stale mark becomes the answer read from the database after it was older than the bound.
_SETTLE_STALE = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v or string.sub(v, 1, 1) ~= '?' then return 0 end
local at = tonumber(string.sub(v, 2))
if at and tonumber(redis.call('TIME')[1]) - at > tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
"""
# A fill's batch: only while the epoch is the fill's, only into absent fields.
_FILL = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local n = 0
for i = 2, #ARGV, 2 do n = n + redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
return n
"""
_FILLED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
return 1
"""


def mark(names) -> None:
    """Step one of a user write, before its commit: every name it touches is unsettled."""
    names = sorted(set(names))
    if not names:
        return
    try:
        _sync_client().eval(_MARK, 1, KEY, *names)
    except (RedisError, OSError) as exc:
        raise Unavailable(f"the user directory (Redis) did not take the write: {exc}") from exc


def settle(values: dict[str, str]) -> bool:
    """Step two, after the commit: each name's final value. False if Redis did not take
    them (the marks stay: readers ask ws-gateway)."""
    if not values:
        return True
    try:
        _sync_client().hset(KEY, mapping=values)
    except (RedisError, OSError):
        log.warning("user directory: could not settle %d names; they stay marked", len(values), exc_info=True)
        return False
    return True


def settle_stale(username: str, value: str) -> bool:
    """ws-gateway answered `username` from its database: a mark older than the bound
    becomes that answer (`value`, or FREE), so a rolled-back write's mark does not send
    every later lookup of the name to ws-gateway."""
    try:
        return bool(_sync_client().eval(_SETTLE_STALE, 1, KEY, username, value, STALE_MARK_SECONDS))
    except (RedisError, OSError):
        return False


def needs_fill() -> bool:
    """True when this Redis's directory was never filled (new, flushed or restarted)."""
    try:
        client = _sync_client()
        epoch = client.get(EPOCH)
        return epoch is None or client.get(FILLED) != epoch
    except (RedisError, OSError):
        return False  # nothing to fill into


def fill(snapshot, batch: int = 500) -> int | None:
    """Write every (username, value) of `snapshot` (an iterable the caller reads from its
    database *after* this function has read the epoch, so call it lazily) into absent
    fields. Returns the fields written, or None when another fill holds the lock or the
    epoch changed under it (Redis restarted: the next lookup's fill starts over)."""
    client = _sync_client()
    token = secrets.token_hex(8)
    if not client.set(FILL_LOCK, token, nx=True, ex=300):
        return None
    try:
        client.set(EPOCH, secrets.token_hex(8), nx=True)
        epoch = client.get(EPOCH)
        written, args = 0, []
        for name, value in snapshot():
            args += [name, value]
            if len(args) >= 2 * batch:
                n = client.eval(_FILL, 2, KEY, EPOCH, epoch, *args)
                if n < 0:
                    return None
                written, args = written + n, []
        if args:
            n = client.eval(_FILL, 2, KEY, EPOCH, epoch, *args)
            if n < 0:
                return None
            written += n
        if not client.eval(_FILLED, 2, EPOCH, FILLED, epoch):
            return None
        return written
    finally:
        if client.get(FILL_LOCK) == token.encode():
            client.delete(FILL_LOCK)


def clear() -> None:
    """Drop the directory (a rebuild follows: `fill`)."""
    _sync_client().delete(KEY, EPOCH, FILLED)
