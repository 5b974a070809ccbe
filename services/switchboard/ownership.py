"""Shard ownership of a service's inbox: one consumer per shard, whatever the replicas.

Every replica of `python -m django inbox` runs an `Owner`. Replicas announce themselves
in Redis (a member set with a heartbeat); each one computes the same assignment from
the live members (shard s goes to the (s mod R)-th member in name order) and takes the
leases of its shards; a shard another replica should have is released as soon as the
command in hand is done, and taken by its new owner on its next tick.

The three guards, and where each fact is checked (docs/operations.md, "Shard ownership"):

* The lease (coordination Redis, `sb-own:<inbox>:<n>` = "<member> <token>", with a TTL):
  at most one replica holds a shard; a replica that dies, freezes or is cut off from
  Redis stops renewing and loses it after INBOX_LEASE_SECONDS. Every acquisition gets
  a new, larger token (INCR), so an owner is (member, token), not just member.
* The fence at consumption (the layer Redis that holds the shard's queue): the new
  owner writes its token to `sb-inboxfence:<inbox>.<n>` before it takes a command, and a
  command is taken only by a Lua script that compares the fence with the caller's token
  and pops in the same atomic step. A replica that lost the shard, however long it was
  paused, cannot take another command from it. The command taken is kept in an
  in-flight record until the owner takes its next one; a new owner puts a previous
  owner's unfinished command back at the head of the queue (its original score), so a
  crash between taking and finishing loses nothing and keeps the order.
* The fence at commit (the service's database, table switchboard_shardfence): the new
  owner writes its token there too before consuming, and every store call that commits
  a command's effects (chat's post_message, collab's append_update, notification's create) runs `check_fence()`
  in its own transaction: a stale owner's commit is refused (ShardLost) and it broadcasts
  nothing. This closes the one gap the queue fence leaves: a command taken just before a
  long pause and handled after it.

Waiting for work does not poll: senders use `InboxLayer`, which rings a per-shard
doorbell (a one-item list) after each command, and an idle owner blocks on it.

Each worker keeps its own record of what it handled: `records` (the last
INBOX_RECORD_LIMIT, served as JSON lines on the metrics port's /handled) and, with
INBOX_RECORD_LOG=1, one log line per command: shard, token, command id (a hash of the
command's bytes in the queue, unique per send) and whether it was a redelivery.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from channels_redis.core import RedisChannelLayer

from switchboard import metrics
from switchboard.config import env_bool, env_float, env_int

log = logging.getLogger(__name__)
record_log = logging.getLogger("switchboard.handled")


class ShardLost(Exception):
    """This worker no longer owns the shard of the command it is handling."""


# ---------------------------------------------------------------- Lua scripts ----
# Members: ZSET member -> expiry (ms, Redis clock). Returns the live members.
HEARTBEAT_LUA = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 4)
end
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

# KEYS: lease, token counter. ARGV: member, ttl ms, token held ('' if none), '1' to acquire.
# {1, token}: renewed; {2, token}: acquired (a new token); {0, token}: held by someone
# else or (renewing) lost; a lost lease is never silently re-taken under the old token.
LEASE_LUA = """
local v = redis.call('GET', KEYS[1])
if v then
  if ARGV[3] ~= '' and v == ARGV[1] .. ' ' .. ARGV[3] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, tonumber(ARGV[3])}
  end
  return {0, tonumber(string.match(v, '(%d+)$'))}
end
if ARGV[4] ~= '1' then return {0, 0} end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])
return {2, token}
"""

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# On the layer host, by a new owner before its first command. KEYS: fence, in-flight,
# queue, redelivery mark. ARGV: token, queue expiry (s). Raises the fence (never lowers
# it) and puts a previous owner's unfinished command back at the head of the queue.
# Returns 1 if a command was put back, 0 if not, -1 if a newer owner fenced us out.
TAKE_OVER_LUA = """
local fence = tonumber(redis.call('GET', KEYS[1]) or '0')
local token = tonumber(ARGV[1])
if fence > token then return -1 end
redis.call('SET', KEYS[1], ARGV[1])
local held = redis.call('HMGET', KEYS[2], 'token', 'score', 'member')
if held[3] and tonumber(held[1]) < token then
  redis.call('ZADD', KEYS[3], held[2], held[3])
  redis.call('EXPIRE', KEYS[3], ARGV[2])
  redis.call('SET', KEYS[4], held[3], 'EX', ARGV[2])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

# KEYS: fence, in-flight, queue, redelivery mark. ARGV: token. The previous command of
# this owner is finished (its in-flight record goes); the next is taken and recorded.
# {-1}: fenced out; {0}: queue empty; {1, member, score, redelivery 0/1}.
TAKE_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end
redis.call('DEL', KEYS[2])
local r = redis.call('ZPOPMIN', KEYS[3])
if #r == 0 then return {0} end
redis.call('HSET', KEYS[2], 'token', ARGV[1], 'score', r[2], 'member', r[1])
local again = 0
if redis.call('GET', KEYS[4]) == r[1] then
  redis.call('DEL', KEYS[4])
  again = 1
end
return {1, r[1], r[2], again}
"""

# KEYS: fence, in-flight. ARGV: token. A clean hand-over: the last command is finished.
FINISH_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[2]) return 1 end
return 0
"""


def lease_key(inbox: str, shard: int) -> str:
    return f"sb-own:{inbox}:{shard}"


def members_key(inbox: str) -> str:
    return f"sb-own:{inbox}:members"


def assignment(members: list[str], shards: int) -> dict[int, str]:
    """Which member should own each shard: every replica computes the same from the same
    member list; with R members each has floor or ceil of S/R shards, and R > S leaves
    the rest as hot standbys."""
    ordered = sorted(members)
    if not ordered:
        return {}
    return {s: ordered[s % len(ordered)] for s in range(shards)}


def default_member() -> str:
    """host:pid:random, so an operator reading the lease knows which process holds it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# ------------------------------------------------------------ the send side ----
class InboxLayer(RedisChannelLayer):
    """channels_redis's layer, plus a doorbell rung after each command sent to a shard,
    so the shard's owner can block until there is work instead of polling (a blocking
    pop would let Redis hand a command to a paused ex-owner)."""

    async def send(self, channel, message):
        await super().send(channel, message)
        # With several layer hosts a shard's commands are spread over them and its owner
        # polls them in turn; the doorbell serves the usual single host.
        if "!" in channel or self.ring_size != 1:
            return
        bell = bell_key(self.prefix, channel)
        async with self.connection(0).pipeline(transaction=False) as pipe:
            pipe.lpush(bell, 1)
            pipe.ltrim(bell, 0, 0)
            pipe.expire(bell, int(self.expiry))
            await pipe.execute()


def bell_key(prefix: str, channel: str) -> str:
    return f"{prefix}bell:{channel}"


# --------------------------------------------------------------- the record ----
@dataclass(frozen=True)
class Claim:
    """The shard a command came from and the owner (token) handling it."""

    inbox: str
    shard: int
    token: int
    command_id: str
    redelivery: bool = False


current: contextvars.ContextVar[Claim | None] = contextvars.ContextVar("inbox_claim", default=None)
records: deque[dict] = deque(maxlen=max(1, env_int("INBOX_RECORD_LIMIT")))
_records_lock = threading.Lock()


def record(claim: Claim, member: str, outcome: str) -> None:
    entry = {
        "t": round(time.time(), 3),
        "member": member,
        "shard": claim.shard,
        "token": claim.token,
        "id": claim.command_id,
        "redelivery": claim.redelivery,
        "outcome": outcome,
    }
    with _records_lock:
        records.append(entry)
    if env_bool("INBOX_RECORD_LOG"):
        record_log.info("handled %s", json.dumps(entry, separators=(",", ":")))


def records_jsonl() -> bytes:
    with _records_lock:
        entries = list(records)
    return "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries).encode()


# ------------------------------------------------------ the fence at commit ----
FENCE_TABLE = "switchboard_shardfence"


def check_fence(using: str = "default") -> None:
    """Inside the transaction that commits a command's effects: refuse (ShardLost) unless
    this worker's token is still the newest for the command's shard. Outside an inbox
    worker (an HTTP view, a test calling the store) there is no claim and nothing to check."""
    claim = current.get()
    if claim is None:
        return
    from django.db import connections

    with connections[using].cursor() as cursor:
        cursor.execute(
            f"UPDATE {FENCE_TABLE} SET token = %s WHERE inbox = %s AND shard = %s AND token <= %s",
            [claim.token, claim.inbox, claim.shard, claim.token],
        )
        if cursor.rowcount != 1:
            raise ShardLost(f"{claim.inbox}.{claim.shard}: token {claim.token} is no longer the owner's")


def raise_db_fence(inbox: str, shard: int, token: int, using: str = "default") -> bool:
    """A new owner's token, written before its first command: from now on a commit with
    any older token is refused. False if a newer token is already there."""
    from django.db import connections, transaction

    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {FENCE_TABLE} (inbox, shard, token) VALUES (%s, %s, %s) "
            f"ON CONFLICT (inbox, shard) DO UPDATE SET token = excluded.token "
            f"WHERE {FENCE_TABLE}.token <= excluded.token",
            [inbox, shard, token],
        )
        cursor.execute(f"SELECT token FROM {FENCE_TABLE} WHERE inbox = %s AND shard = %s", [inbox, shard])
        return cursor.fetchone()[0] == token


# ------------------------------------------------------------ the ownership ----
@dataclass
class Timing:
    """The bounds, from the settings (docs/operations.md)."""

    lease: float = field(default_factory=lambda: env_float("INBOX_LEASE_SECONDS"))
    renew: float = field(default_factory=lambda: env_float("INBOX_RENEW_SECONDS"))
    stall: float = field(default_factory=lambda: env_float("INBOX_STALL_SECONDS"))
    # Redis's clock and ours may run at slightly different rates; a lease is trusted
    # locally for this much less than its TTL.
    margin: float = 0.2


class ShardRunner:
    """One owned shard: takes its commands one at a time, fenced, and hands each to a
    fresh application instance of the service's consumer (fresh per acquisition, so a
    handed-over collab document is reloaded from the store, as after a restart)."""

    def __init__(self, owner: Owner, shard: int, token: int):
        self.owner, self.shard, self.token = owner, shard, token
        self.channel = f"{owner.inbox}.{shard}"
        self.stopping = False  # finish the command in hand, then stop (a rebalance)
        self.busy_since: float | None = None
        self.task: asyncio.Task | None = None
        self.app_task: asyncio.Task | None = None
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=1)
        self.host = 0

    def keys(self, index: int) -> list[str]:
        p = self.owner.layer.prefix
        return [
            f"{p}fence:{self.channel}",
            f"{p}inflight:{self.channel}",
            p + self.channel,
            f"{p}redeliver:{self.channel}",
        ]

    async def take_over(self) -> bool:
        """Raise both fences; False if a newer owner exists already."""
        layer = self.owner.layer
        for index in range(layer.ring_size):
            conn = layer.connection(index)
            put_back = await conn.eval(TAKE_OVER_LUA, 4, *self.keys(index), self.token, int(layer.expiry))
            if put_back == -1:
                return False
            if put_back == 1:
                log.warning("%s: took over a command the previous owner had not finished", self.channel)
        return await self.owner.raise_db_fence(self.owner.inbox, self.shard, self.token)

    def start(self) -> None:
        scope = {"type": "channel", "channel": self.channel, "shard": self.shard, "token": self.token}

        async def send(_message):  # an inbox consumer answers through the layers, not ASGI
            raise RuntimeError("inbox consumers do not send ASGI messages")

        self.app_task = asyncio.ensure_future(self.owner.application(scope, self.queue.get, send))
        self.task = asyncio.ensure_future(self.run())

    async def run(self) -> None:
        layer = self.owner.layer
        try:
            while not self.stopping:
                if not self.owner.trusts_lease(self.shard):
                    self.owner.lost(self.shard, "lease not renewed in time", self)
                    return
                index = self.host
                self.host = (self.host + 1) % layer.ring_size
                conn = layer.connection(index)
                taken = await conn.eval(TAKE_LUA, 4, *self.keys(index), self.token)
                if taken[0] == -1:
                    self.owner.lost(self.shard, "fenced out", self)
                    return
                if taken[0] == 0:
                    if layer.ring_size == 1:
                        wait = max(0.0, min(1.0, self.owner.lease_left(self.shard)))
                        if wait > 0.01:
                            await conn.blpop([bell_key(layer.prefix, self.channel)], timeout=wait)
                    else:
                        await asyncio.sleep(0.02)
                    continue
                member, redelivery = taken[1], bool(taken[3])
                claim = Claim(
                    self.owner.inbox,
                    self.shard,
                    self.token,
                    hashlib.sha1(member).hexdigest()[:16],
                    redelivery,
                )
                message = layer.deserialize(member)
                await self.handle(message, claim)
            # A clean stop: the last command is finished, nobody needs to redo it.
            for index in range(layer.ring_size):
                await layer.connection(index).eval(FINISH_LUA, 2, *self.keys(index)[:2], self.token)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: consumer loop failed", self.channel)
            self.owner.lost(self.shard, "error", self)

    async def handle(self, message: dict, claim: Claim) -> None:
        done = asyncio.get_running_loop().create_future()
        message["__claim__"] = (claim, done)
        self.busy_since = time.monotonic()
        try:
            await self.queue.put(message)
            outcome = await done
        finally:
            self.busy_since = None
        self.owner.record(claim, outcome)

    def cancel(self) -> None:
        for task in (self.task, self.app_task):
            if task and not task.done() and task is not asyncio.current_task():
                task.cancel()


class Owner:
    """This replica's part in the ownership of one inbox's shards (see the module doc)."""

    def __init__(
        self,
        inbox: str,
        shards: int,
        application: Callable[..., Awaitable[None]],
        layer: RedisChannelLayer,
        redis,
        *,
        member: str | None = None,
        timing: Timing | None = None,
        raise_db_fence: Callable[[str, int, int], Awaitable[bool]] | None = None,
    ):
        self.inbox, self.shards, self.application, self.layer, self.redis = inbox, shards, application, layer, redis
        self.member = member or default_member()
        self.timing = timing or Timing()
        self._raise_db_fence = raise_db_fence
        self.runners: dict[int, ShardRunner] = {}
        self.trusted_until: dict[int, float] = {}
        self.last_tick = time.monotonic()
        self.stalled = False
        self._lease = redis.register_script(LEASE_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        self._heartbeat = redis.register_script(HEARTBEAT_LUA)

    # -- what the runners and the health check ask
    def trusts_lease(self, shard: int) -> bool:
        return self.lease_left(shard) > 0

    def lease_left(self, shard: int) -> float:
        return self.trusted_until.get(shard, 0.0) - time.monotonic()

    def owned(self) -> dict[int, int]:
        """{shard: token} this replica owns now."""
        return {s: r.token for s, r in self.runners.items()}

    def healthy(self) -> tuple[bool, str]:
        """Liveness: the ownership loop ticks and no command has run past the stall bound."""
        since = time.monotonic() - self.last_tick
        if self.stalled:
            return False, "a command stalled past INBOX_STALL_SECONDS; shards given up"
        if since > max(self.timing.stall, 3 * self.timing.renew):
            return False, f"ownership loop has not run for {since:.1f}s"
        return True, f"owns {sorted(self.runners)}"

    async def raise_db_fence(self, inbox: str, shard: int, token: int) -> bool:
        if self._raise_db_fence is None:
            return True
        return await self._raise_db_fence(inbox, shard, token)

    def record(self, claim: Claim, outcome: str) -> None:
        if outcome != "refused" and not self.trusts_lease(claim.shard):
            # Finished after its lease ran out (a pause mid-command): whatever it
            # committed made it before the new owner's fence, who redoes the command.
            outcome = "late"
        record(claim, self.member, outcome)
        metrics.INBOX_OWNED_COMMANDS.labels(self.inbox, str(claim.shard), outcome).inc()

    def lost(self, shard: int, why: str, runner: ShardRunner | None = None) -> None:
        if runner is not None and self.runners.get(shard) is not runner:
            return  # an earlier tenure's runner; the shard is held anew
        runner = self.runners.pop(shard, None)
        self.trusted_until.pop(shard, None)
        if runner is not None:
            log.warning("%s.%d: lost (token %d, %s)", self.inbox, shard, runner.token, why)
            metrics.INBOX_OWNERSHIP_EVENTS.labels(self.inbox, "lost").inc()
            runner.cancel()
        self._export()

    def _export(self) -> None:
        for s in range(self.shards):
            metrics.INBOX_SHARD_OWNED.labels(self.inbox, str(s)).set(1 if s in self.runners else 0)

    # -- the loop
    async def run(self) -> None:
        self._export()
        try:
            while True:
                started = time.monotonic()
                try:
                    await self.tick()
                except Exception as exc:
                    # Redis unreachable: leases we cannot renew run out on their own.
                    log.warning("%s ownership tick failed: %s", self.inbox, exc)
                    for shard in list(self.runners):
                        if not self.trusts_lease(shard):
                            self.lost(shard, "lease ran out")
                self.last_tick = time.monotonic()
                await asyncio.sleep(max(0.0, self.timing.renew - (time.monotonic() - started)))
        finally:
            await self.shutdown()

    async def tick(self) -> None:
        ttl_ms = int(self.timing.lease * 1000)
        members = [
            m.decode() for m in await self._heartbeat(keys=[members_key(self.inbox)], args=[self.member, ttl_ms])
        ]
        if self.stalled:
            members = [m for m in members if m != self.member]
        wanted = {s for s, m in assignment(members, self.shards).items() if m == self.member}
        # A command running past the stall bound: give everything up, fail liveness.
        for runner in list(self.runners.values()):
            if runner.busy_since is not None and time.monotonic() - runner.busy_since > self.timing.stall:
                log.error(
                    "%s: a command has run for over %.0fs; giving up every shard", runner.channel, self.timing.stall
                )
                self.stalled = True
        if self.stalled:
            await self._heartbeat(keys=[members_key(self.inbox)], args=["", ttl_ms])
            await self.redis.zrem(members_key(self.inbox), self.member)
            for shard in list(self.runners):
                await self.release(shard, wait=False)
            return
        for shard, runner in list(self.runners.items()):
            if shard not in wanted or runner.task.done():
                await self.release(shard)
                continue
            sent = time.monotonic()
            state, _ = await self._lease(
                keys=[lease_key(self.inbox, shard), ""], args=[self.member, ttl_ms, runner.token, "0"]
            )
            if state == 1:
                self.trusted_until[shard] = sent + self.timing.lease - self.timing.margin
            else:
                self.lost(shard, "lease taken or expired")
        for shard in sorted(wanted - set(self.runners)):
            await self.acquire(shard, ttl_ms)

    async def acquire(self, shard: int, ttl_ms: int) -> None:
        key = lease_key(self.inbox, shard)
        sent = time.monotonic()
        state, token = await self._lease(keys=[key, key + ":token"], args=[self.member, ttl_ms, "", "1"])
        if state != 2:
            return
        runner = ShardRunner(self, shard, int(token))
        self.trusted_until[shard] = sent + self.timing.lease - self.timing.margin
        try:
            ok = await runner.take_over()
        except Exception:
            log.exception("%s.%d: take-over failed", self.inbox, shard)
            ok = False
        if not ok:
            self.trusted_until.pop(shard, None)
            await self._release(keys=[key], args=[f"{self.member} {token}"])
            return
        self.runners[shard] = runner
        runner.start()
        metrics.INBOX_OWNERSHIP_EVENTS.labels(self.inbox, "acquired").inc()
        log.info("%s.%d: acquired (token %d)", self.inbox, shard, token)
        self._export()

    async def release(self, shard: int, wait: bool = True) -> None:
        """Hand a shard over: let the command in hand finish (a rebalance) or not (a
        stall), then delete the lease so the next owner need not wait for its TTL."""
        runner = self.runners.get(shard)
        if runner is None:
            return
        if wait and not runner.task.done():
            runner.stopping = True
            # The command in hand is short; its lease is still good for about a TTL.
            try:
                await asyncio.wait_for(asyncio.shield(runner.task), timeout=max(0.1, self.lease_left(shard)))
            except TimeoutError:
                pass
        self.runners.pop(shard, None)
        self.trusted_until.pop(shard, None)
        runner.cancel()
        await self._release(keys=[lease_key(self.inbox, shard)], args=[f"{self.member} {runner.token}"])
        metrics.INBOX_OWNERSHIP_EVENTS.labels(self.inbox, "released").inc()
        log.info("%s.%d: released (token %d)", self.inbox, shard, runner.token)
        self._export()

    async def shutdown(self) -> None:
        """A clean stop (SIGTERM): hand every shard over at once."""
        results = await asyncio.gather(*(self.release(shard) for shard in list(self.runners)), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.error("%s: a release on shutdown failed: %s", self.inbox, result)
        try:
            await self.redis.zrem(members_key(self.inbox), self.member)
        except Exception:
            pass
