"""Shard ownership of a service's inbox: one consumer per shard, whatever the replicas.

Every replica of `python -m django inbox` runs an `Owner`. Replicas announce themselves
in Redis (a member set with a heartbeat); each one computes the same assignment from
the live members (shard s goes to the (s mod R)-th member in name order) and takes the
leases of its shards; a shard another replica should have is released as soon as the
command in hand is done, and its releaser wakes the other members, so the new owner
takes it at once rather than on its next tick. A replica that dies is noticed by the
first tick of each survivor after its heartbeat and leases have expired: every shard
is owned again within INBOX_LEASE_SECONDS + INBOX_RENEW_SECONDS of its last renewal,
plus the command in hand on a shard that moves between survivors and the round trips
of taking a shard over (docs/operations.md, "Shard ownership", has the reasoning).

The three guards, and where each fact is checked (docs/operations.md, "Shard ownership"):

* The lease (coordination Redis, `sb-own:<inbox>:<n>` = "<member> <token>", with a TTL):
  at most one replica holds a shard; a replica that dies, freezes or is cut off from
  Redis stops renewing and loses it after INBOX_LEASE_SECONDS. Every acquisition gets
  a new, larger token (INCR), so an owner is (member, token), not just member.
* The fence at consumption (the layer Redis that holds the shard's queue): the new
  owner writes its token to `sb-inboxfence:<inbox>.<n>` before it takes a command, and a
  command is taken only by a Lua script that compares the fence with the caller's token
  and pops in the same atomic step. A replica that lost the shard, however long it was
  paused, cannot take another command from it. Every command taken is kept in the
  shard's held record (`sb-inboxheld:<inbox>.<n>`, command -> token and score) until it
  is finished, whether it runs or waits in its key's lane; a new owner puts every
  command a previous owner held back in the queue at its original score, so a crash
  between taking and finishing loses nothing and keeps each key's order.
* The fence at commit (the service's database, table switchboard_shardfence): the new
  owner writes its token there too before consuming, and every store call that commits
  a command's effects (chat's post_message, collab's append_update, notification's create) runs `check_fence()`
  in its own transaction: a stale owner's commit is refused (ShardLost) and it broadcasts
  nothing. This closes the one gap the queue fence leaves: a command taken just before a
  long pause and handled after it.

Lanes (ShardRunner): a shard holds many keys (rooms, documents, users; the key is
switchboard.routes.command_key, the one the sender sharded by). Sharding exists so one
key's commands run one at a time, in order; the runner keeps exactly that and no more:
each key's commands run in the key's lane, in the order taken, and different keys'
lanes run side by side (at most INBOX_LANES at once; at most INBOX_HELD_COMMANDS taken
ahead). A reconnect storm into one room fills one lane; another room on the shard waits
for one of the storm's commands at most, not for all of them. A lane checks the lease
before each command it starts, so an owner paused past its lease starts nothing more.

Batches: a service may declare command types it handles together (the consumer's
`batch_types`, e.g. chat's gw.connect and gw.disconnect). When a lane's next commands
are a run of such types, the lane hands the whole run (up to BATCH_AT_ONCE) to the
consumer as one step (one `BATCH` message): a reconnect storm into one room costs one
history read and one presence check per step instead of per connect. A batch is only
ever consecutive commands of one lane, so nothing is reordered around another command
of the key; each command of it stays in the held record until the whole batch is
done, so a crash mid-batch loses none (the next owner redoes all of them).

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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from channels_redis.core import RedisChannelLayer

from switchboard import metrics, redisconn, routes
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
# {1, token}: renewed; {2, token}: acquired (a new token); {0, token, ms left}: held by
# someone else (for that much longer unless renewed or released) or (renewing) lost; a
# lost lease is never silently re-taken under the old token.
LEASE_LUA = """
local v = redis.call('GET', KEYS[1])
if v then
  if ARGV[3] ~= '' and v == ARGV[1] .. ' ' .. ARGV[3] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, tonumber(ARGV[3])}
  end
  return {0, tonumber(string.match(v, '(%d+)$')), redis.call('PTTL', KEYS[1])}
end
if ARGV[4] ~= '1' then return {0, 0, 0} end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])
return {2, token}
"""

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# The held record: `sb-inboxheld:<inbox>.<n>`, a hash of every command the owner has
# taken and not finished (command bytes -> "<token> <score>"), whether it runs or waits
# in its key's lane; redelivery marks: the set `sb-inboxredelivered:<inbox>.<n>`.

# On the layer host, by a new owner before its first command. KEYS: fence, the previous
# version's one-command in-flight record, queue, the previous version's redelivery mark,
# held record, redelivery marks. ARGV: token, queue expiry (s). Raises the fence (never
# lowers it) and puts every command a previous owner held and had not finished back in
# the queue at its original score (so in its original order), marked as a redelivery.
# Returns how many were put back, or -1 if a newer owner fenced us out.
TAKE_OVER_LUA = """
local fence = tonumber(redis.call('GET', KEYS[1]) or '0')
local token = tonumber(ARGV[1])
if fence > token then return -1 end
redis.call('SET', KEYS[1], ARGV[1])
local back = 0
local old = redis.call('HMGET', KEYS[2], 'token', 'score', 'member')
if old[3] and tonumber(old[1]) < token then
  redis.call('ZADD', KEYS[3], old[2], old[3])
  redis.call('SADD', KEYS[6], old[3])
  redis.call('DEL', KEYS[2], KEYS[4])
  back = back + 1
end
local held = redis.call('HGETALL', KEYS[5])
for i = 1, #held, 2 do
  local t, score = string.match(held[i + 1], '^(%d+) (.+)$')
  if tonumber(t) < token then
    redis.call('ZADD', KEYS[3], score, held[i])
    redis.call('SADD', KEYS[6], held[i])
    redis.call('HDEL', KEYS[5], held[i])
    back = back + 1
  end
end
if back > 0 then
  redis.call('EXPIRE', KEYS[3], ARGV[2])
  redis.call('EXPIRE', KEYS[6], ARGV[2])
end
return back
"""

# KEYS: fence, held record, queue, redelivery marks. ARGV: token, most to take. Takes
# the oldest commands and records each in the held record in the same atomic step.
# {-1}: fenced out; {0}: queue empty; {1, member, score, redelivery 0/1, member, ...}.
TAKE_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1} end
local r = redis.call('ZPOPMIN', KEYS[3], tonumber(ARGV[2]))
if #r == 0 then return {0} end
local out = {1}
for i = 1, #r, 2 do
  redis.call('HSET', KEYS[2], r[i], ARGV[1] .. ' ' .. r[i + 1])
  out[#out + 1] = r[i]
  out[#out + 1] = r[i + 1]
  out[#out + 1] = redis.call('SREM', KEYS[4], r[i])
end
return out
"""

# KEYS: fence, held record. ARGV: token, commands. These are finished: out of the record.
FINISH_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local mine = ARGV[1] .. ' '
for i = 2, #ARGV do
  local v = redis.call('HGET', KEYS[2], ARGV[i])
  if v and string.sub(v, 1, #mine) == mine then redis.call('HDEL', KEYS[2], ARGV[i]) end
end
return 1
"""

# KEYS: fence, held record, queue. ARGV: token, queue expiry (s), commands. A clean
# hand-over: commands taken but never started go back to the queue at their score.
PUT_BACK_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local mine = ARGV[1] .. ' '
for i = 3, #ARGV do
  local v = redis.call('HGET', KEYS[2], ARGV[i])
  if v and string.sub(v, 1, #mine) == mine then
    redis.call('ZADD', KEYS[3], string.sub(v, #mine + 1), ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
redis.call('EXPIRE', KEYS[3], ARGV[2])
return 1
"""


def lease_key(inbox: str, shard: int) -> str:
    return f"sb-own:{inbox}:{shard}"


def members_key(inbox: str) -> str:
    return f"sb-own:{inbox}:members"


def wake_key(inbox: str, member: str) -> str:
    """A member's wake-up call: a one-item list it blocks on between ticks, pushed by a
    replica that has just released a shard, so the shard's next owner takes it at once
    instead of on its next tick."""
    return f"sb-own:{inbox}:wake:{member}"


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

    # channels_redis's receive (BZPOPMIN) blocks this long per call: under the socket
    # timeout, or an empty channel would read as a stalled Redis (redisconn's doc).
    brpop_timeout = redisconn.BLOCK_SECONDS

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


def held_key(prefix: str, channel: str) -> str:
    """The shard's held record: the commands its owner took and has not finished."""
    return f"{prefix}held:{channel}"


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


# Commands a lane past INBOX_LANE_BACKLOG refuses instead of queueing (InboxConsumer
# answers them): a connect can be retried by its client. Nothing else is refused: a
# disconnect, a client frame or another service's command always waits its turn.
SHEDDABLE = frozenset({"gw.connect"})

# The type of the one message a lane hands its consumer for a batch: {"type": BATCH,
# "commands": [command, ...]}, each command with its own "__claim__" (InboxConsumer).
BATCH = "inbox.batch"


@dataclass
class Held:
    """A command taken from the shard and not finished: waiting in its key's lane, or
    running. `index`: the layer host it came from (where its held record is)."""

    member: bytes
    message: dict
    claim: Claim
    index: int


class ShardRunner:
    """One owned shard: takes its commands, fenced, and runs them in lanes, one lane per
    key (room, document, user; switchboard.routes.command_key): a key's commands run one
    at a time in the order taken, different keys' side by side, so a storm into one
    room does not hold back the rooms that hash onto the same shard. Each command goes
    to one application instance of the service's consumer (fresh per acquisition, so a
    handed-over collab document is reloaded from the store, as after a restart).

    Every command taken is in the shard's held record (Redis) until it is finished, so
    a new owner puts back all a crashed one held, waiting or running, in their order.
    Bounds: INBOX_HELD_COMMANDS taken at once (the taker waits for room beyond it),
    INBOX_LANES keys running at once (a further key's lane waits for a slot), and
    INBOX_LANE_BACKLOG commands waiting in one lane: a connect beyond it is refused with
    1013 at once (SHEDDABLE), as the gateway refuses one to a full shard."""

    TAKE_AT_ONCE = 100  # commands per take: one Redis call, one deserialization pass
    # Commands of one lane handed over as one batch at most: bounds one step's time
    # (the stall check and a clean stop wait for the step in hand) and its frames.
    BATCH_AT_ONCE = 100

    def __init__(self, owner: Owner, shard: int, token: int):
        self.owner, self.shard, self.token = owner, shard, token
        self.channel = f"{owner.inbox}.{shard}"
        self.stopping = False  # finish the commands in hand, then stop (a rebalance)
        self.task: asyncio.Task | None = None
        self.app_task: asyncio.Task | None = None
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=1)
        self.host = 0
        self.held_limit = max(1, env_int("INBOX_HELD_COMMANDS"))
        self.lane_backlog = max(1, env_int("INBOX_LANE_BACKLOG"))
        self.shed_tasks: set[asyncio.Task] = set()
        self.slots = asyncio.Semaphore(max(1, env_int("INBOX_LANES")))
        self.lanes: dict[str | None, deque[Held]] = {}
        self.lane_tasks: dict[str | None, asyncio.Task] = {}
        self.running: dict[str | None, float] = {}  # key -> when its command in hand started
        self.held = 0  # taken and not finished
        self.room = asyncio.Event()  # set when a command finishes
        self.finished: list[tuple[int, bytes]] = []  # not yet out of the held record
        self.finished_ready = asyncio.Event()
        self.finisher_task: asyncio.Task | None = None
        # One flush at a time: a clean stop's last flush must wait for the finisher's
        # call in flight, or the release cancels that call and the commands it carried
        # stay in the held record, to be redone by the next owner.
        self.flush_lock = asyncio.Lock()

    @property
    def busy_since(self) -> float | None:
        """When the longest-running command in hand started (the stall check)."""
        return min(self.running.values(), default=None)

    def keys(self, index: int) -> list[str]:
        p = self.owner.layer.prefix
        return [
            f"{p}fence:{self.channel}",
            held_key(p, self.channel),
            p + self.channel,
            f"{p}redelivered:{self.channel}",
        ]

    async def take_over(self) -> bool:
        """Raise both fences; False if a newer owner exists already."""
        layer = self.owner.layer
        p = layer.prefix
        for index in range(layer.ring_size):
            conn = layer.connection(index)
            fence, held, queue, marks = self.keys(index)
            legacy = [f"{p}inflight:{self.channel}", f"{p}redeliver:{self.channel}"]
            keys = [fence, legacy[0], queue, legacy[1], held, marks]
            put_back = await conn.eval(TAKE_OVER_LUA, 6, *keys, self.token, int(layer.expiry))
            if put_back == -1:
                return False
            if put_back:
                log.warning("%s: took over %d command(s) the previous owner had not finished", self.channel, put_back)
        return await self.owner.raise_db_fence(self.owner.inbox, self.shard, self.token)

    def start(self) -> None:
        scope = {"type": "channel", "channel": self.channel, "shard": self.shard, "token": self.token}

        async def send(_message):  # an inbox consumer answers through the layers, not ASGI
            raise RuntimeError("inbox consumers do not send ASGI messages")

        self.app_task = asyncio.ensure_future(self.owner.application(scope, self.queue.get, send))
        self.finisher_task = asyncio.ensure_future(self.finisher())
        self.task = asyncio.ensure_future(self.run())

    async def run(self) -> None:
        layer = self.owner.layer
        try:
            while not self.stopping:
                if not self.owner.trusts_lease(self.shard):
                    self.owner.lost(self.shard, "lease not renewed in time", self)
                    return
                room = self.held_limit - self.held
                if room <= 0:
                    # Full: wait for a finish (or the renew interval, to recheck the lease).
                    self.room.clear()
                    try:
                        await asyncio.wait_for(self.room.wait(), timeout=self.owner.timing.renew)
                    except TimeoutError:
                        pass
                    continue
                index = self.host
                self.host = (self.host + 1) % layer.ring_size
                conn = layer.connection(index)
                taken = await conn.eval(TAKE_LUA, 4, *self.keys(index), self.token, min(room, self.TAKE_AT_ONCE))
                if taken[0] == -1:
                    self.owner.lost(self.shard, "fenced out", self)
                    return
                if taken[0] == 0:
                    if layer.ring_size == 1:
                        # At most BLOCK_SECONDS: below the socket timeout (redisconn).
                        wait = max(0.0, min(redisconn.BLOCK_SECONDS, self.owner.lease_left(self.shard)))
                        if wait > 0.01:
                            await conn.blpop([bell_key(layer.prefix, self.channel)], timeout=wait)
                    else:
                        await asyncio.sleep(0.02)
                    continue
                for i in range(1, len(taken), 3):
                    member, redelivery = taken[i], bool(taken[i + 2])
                    claim = Claim(
                        self.owner.inbox,
                        self.shard,
                        self.token,
                        hashlib.sha1(member).hexdigest()[:16],
                        redelivery,
                    )
                    message = layer.deserialize(member)
                    self.hold(Held(member, message, claim, index))
            # A clean stop: the commands in hand finish, those still waiting in a lane
            # go back to the queue for the next owner, in their order.
            await asyncio.gather(*self.lane_tasks.values(), *self.shed_tasks, return_exceptions=True)
            await self.flush_finished()
            unstarted: dict[int, list[bytes]] = {}
            for waiting in self.lanes.values():
                for held in waiting:
                    unstarted.setdefault(held.index, []).append(held.member)
            for index, members in unstarted.items():
                await layer.connection(index).eval(
                    PUT_BACK_LUA, 3, *self.keys(index)[:3], self.token, int(layer.expiry), *members
                )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: consumer loop failed", self.channel)
            self.owner.lost(self.shard, "error", self)

    def hold(self, held: Held) -> None:
        """Queue a taken command in its key's lane, starting the lane if it is idle."""
        key = routes.command_key(held.message)
        self.held += 1
        waiting = self.lanes.setdefault(key, deque())
        if len(waiting) >= self.lane_backlog and held.message.get("type") in SHEDDABLE:
            # One key's storm past its bound: refused now (1013, the client retries with
            # backoff), as the gateway refuses a connect to a full shard, instead of
            # waiting out CONNECT_TIMEOUT_SECONDS behind the lane and leaving a command
            # for a socket long closed. It runs beside the lane: it changes nothing.
            held.message["__shed__"] = True
            task = asyncio.ensure_future(self.run_one(held))
            self.shed_tasks.add(task)
            task.add_done_callback(self.shed_tasks.discard)
            return
        waiting.append(held)
        if key not in self.lane_tasks:
            self.lane_tasks[key] = asyncio.ensure_future(self.lane(key))

    async def run_one(self, held: Held) -> None:
        await self.handle(held.message, held.claim)
        self.finished.append((held.index, held.member))
        self.finished_ready.set()
        self.held -= 1
        self.room.set()

    def next_batch(self, waiting: deque[Held]) -> list[Held]:
        """The lane's next step: its first command, and with it the commands right after
        it while all are of the consumer's batch types (a run only: a command of another
        type ends it, so the key's order is kept)."""
        batchable = self.owner.batch_types
        batch = [waiting.popleft()]
        if batch[0].message.get("type") not in batchable:
            return batch
        while waiting and len(batch) < self.BATCH_AT_ONCE and waiting[0].message.get("type") in batchable:
            batch.append(waiting.popleft())
        return batch

    async def run_batch(self, batch: list[Held]) -> None:
        """Hand a run of commands to the consumer as one message; each is finished (out
        of the held record) only once the whole batch is handled."""
        loop = asyncio.get_running_loop()
        futures = []
        for held in batch:
            done = loop.create_future()
            held.message["__claim__"] = (held.claim, done)
            futures.append(done)
        await self.queue.put({"type": BATCH, "commands": [held.message for held in batch]})
        for held, done in zip(batch, futures, strict=True):
            self.owner.record(held.claim, await done)
        for held in batch:
            self.finished.append((held.index, held.member))
        self.finished_ready.set()
        self.held -= len(batch)
        self.room.set()

    async def lane(self, key: str | None) -> None:
        """Run one key's commands in order, one step at a time (a command, or a run of
        batchable ones), each step in a slot."""
        waiting = self.lanes[key]
        try:
            while waiting and not self.stopping:
                async with self.slots:
                    if self.stopping:
                        break
                    if not self.owner.trusts_lease(self.shard):
                        # Paused past the lease: what this lane holds is the next owner's.
                        self.owner.lost(self.shard, "lease not renewed in time", self)
                        return
                    batch = self.next_batch(waiting)
                    self.running[key] = time.monotonic()
                    try:
                        if len(batch) == 1:
                            await self.run_one(batch[0])
                        else:
                            await self.run_batch(batch)
                    finally:
                        del self.running[key]
        finally:
            # Nothing awaits between the empty check and here: a command taken for this
            # key after it starts a new lane.
            if not waiting:
                self.lanes.pop(key, None)
            if self.lane_tasks.get(key) is asyncio.current_task():
                del self.lane_tasks[key]

    async def finisher(self) -> None:
        """Take finished commands out of the held record, many per call under load."""
        while True:
            await self.finished_ready.wait()
            self.finished_ready.clear()
            try:
                await self.flush_finished()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Left in the record: redone by a new owner if this one dies (never lost).
                log.warning("%s: finished commands not cleared yet: %s", self.channel, exc)
                await asyncio.sleep(self.owner.timing.renew)
                self.finished_ready.set()

    async def flush_finished(self) -> None:
        async with self.flush_lock:
            batch, self.finished = self.finished, []
            by_host: dict[int, list[bytes]] = {}
            for index, member in batch:
                by_host.setdefault(index, []).append(member)
            try:
                for index, members in by_host.items():
                    await self.owner.layer.connection(index).eval(
                        FINISH_LUA, 2, *self.keys(index)[:2], self.token, *members
                    )
            except BaseException:
                self.finished = batch + self.finished
                raise

    async def handle(self, message: dict, claim: Claim) -> None:
        done = asyncio.get_running_loop().create_future()
        message["__claim__"] = (claim, done)
        await self.queue.put(message)
        outcome = await done
        self.owner.record(claim, outcome)

    async def stop(self) -> None:
        """Finish the command in hand, then stop (a rebalance). An idle runner is blocked
        on the doorbell for up to a second: ring it, or every hand-over of an idle shard
        would wait that second out before the lease is released."""
        self.stopping = True
        self.room.set()  # a taker waiting for room in a full held record
        layer = self.owner.layer
        if layer.ring_size != 1:
            return  # it polls every 20 ms
        bell = bell_key(layer.prefix, self.channel)
        try:
            async with layer.connection(0).pipeline(transaction=False) as pipe:
                pipe.lpush(bell, 1)
                pipe.ltrim(bell, 0, 0)
                pipe.expire(bell, int(layer.expiry))
                await pipe.execute()
        except Exception as exc:  # it sees `stopping` when its wait times out instead
            log.warning("%s: could not ring the doorbell to stop: %s", self.channel, exc)

    def cancel(self) -> None:
        tasks = [self.task, self.app_task, self.finisher_task, *self.lane_tasks.values(), *self.shed_tasks]
        for task in tasks:
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
        batch_types: Iterable[str] = (),
    ):
        self.inbox, self.shards, self.application, self.layer, self.redis = inbox, shards, application, layer, redis
        # Command types the application handles as one batch when consecutive in a lane
        # (its consumer's `batch_types`; none: every command on its own).
        self.batch_types = frozenset(batch_types)
        self.member = member or default_member()
        self.timing = timing or Timing()
        self._raise_db_fence = raise_db_fence
        self.runners: dict[int, ShardRunner] = {}
        self.trusted_until: dict[int, float] = {}
        self.last_tick = time.monotonic()
        self.stalled = False
        self.members: list[str] = []  # the live members this replica saw last
        # When a shard this replica is assigned but could not take (its lease still held,
        # e.g. by a dead member whose heartbeat ran out a moment before its lease) is free.
        self.retry_at = float("inf")
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
                self.retry_at = float("inf")
                try:
                    await self.tick()
                except Exception as exc:
                    # Redis unreachable: leases we cannot renew run out on their own.
                    log.warning("%s ownership tick failed: %s", self.inbox, exc)
                    for shard in list(self.runners):
                        if not self.trusts_lease(shard):
                            self.lost(shard, "lease ran out")
                self.last_tick = time.monotonic()
                until = min(started + self.timing.renew, self.retry_at)
                await self.wait(until - time.monotonic())
        finally:
            await self.shutdown()

    async def wait(self, seconds: float) -> None:
        """Until the next tick: `seconds`, or less if another replica releases a shard
        (it pushes this member's wake key) — a shard's next owner must not wait a whole
        INBOX_RENEW_SECONDS for it, or a hand-over after a crash would take two ticks."""
        if seconds <= 0.001:
            return
        deadline = time.monotonic() + seconds
        try:
            # In slices of at most BLOCK_SECONDS, under the socket timeout (redisconn):
            # a longer BLPOP would read as a stalled Redis. BLPOP's timeout 0 would block
            # for ever; the timeout bounds a hung connection whatever the client. Not
            # wait_for: it runs the BLPOP as a task of its own and, cancelled, waits for
            # that task to end, and that task was seen still pending in redis-py's retry
            # loop (test_ownership.py hung in 2 of 25 runs, a cancelled Owner.run stuck
            # here; with the BLPOP in this task, 0 of 28).
            while (left := deadline - time.monotonic()) > 0.001:
                block = max(0.01, min(left, redisconn.BLOCK_SECONDS))
                async with asyncio.timeout(block + 1.0):
                    woken = await self.redis.blpop([wake_key(self.inbox, self.member)], timeout=block)
                if woken is not None:
                    return
        except Exception as exc:
            log.debug("%s: waiting for a wake-up failed (%s); sleeping instead", self.inbox, exc)
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))

    async def wake_others(self) -> None:
        """Every other member this replica knows ticks now (after a release, or when the
        members changed)."""
        others = [m for m in self.members if m != self.member]
        if not others:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for m in others:
                key = wake_key(self.inbox, m)
                pipe.lpush(key, 1)
                pipe.ltrim(key, 0, 0)
                pipe.pexpire(key, max(1000, int(self.timing.lease * 1000)))
            await pipe.execute()

    async def tick(self) -> None:
        ttl_ms = int(self.timing.lease * 1000)
        members = [
            m.decode() for m in await self._heartbeat(keys=[members_key(self.inbox)], args=[self.member, ttl_ms])
        ]
        if self.stalled:
            members = [m for m in members if m != self.member]
        changed = set(members) != set(self.members)
        self.members = members
        if changed:
            # A replica joined (this one, on its first tick, too) or left: everyone acts
            # on the new assignment now rather than each on its own next tick.
            await self.wake_others()
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
        # Renew what stays first, so waiting out the command in hand of a shard that moves
        # cannot delay the renewal of the others; the moving ones go together.
        leaving = []
        for shard, runner in list(self.runners.items()):
            if shard not in wanted or runner.task.done():
                leaving.append(shard)
                continue
            sent = time.monotonic()
            state, *_ = await self._lease(
                keys=[lease_key(self.inbox, shard), ""], args=[self.member, ttl_ms, runner.token, "0"]
            )
            if state == 1:
                self.trusted_until[shard] = sent + self.timing.lease - self.timing.margin
            else:
                self.lost(shard, "lease taken or expired")
        if leaving:
            await asyncio.gather(*(self.release(shard) for shard in leaving))
        for shard in sorted(wanted - set(self.runners)):
            await self.acquire(shard, ttl_ms)

    async def acquire(self, shard: int, ttl_ms: int) -> None:
        key = lease_key(self.inbox, shard)
        sent = time.monotonic()
        state, token, *left = await self._lease(keys=[key, key + ":token"], args=[self.member, ttl_ms, "", "1"])
        if state != 2:
            # Held still: by a live member, who wakes us when it lets go, or by a dead
            # one, whose lease may outlive its heartbeat by the length of its last tick:
            # try again the moment it runs out rather than a tick later.
            if left and int(left[0]) > 0:
                self.retry_at = min(self.retry_at, sent + int(left[0]) / 1000 + 0.005)
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
            # The command in hand is short; its lease is still good for about a TTL.
            try:
                await runner.stop()
                await asyncio.wait_for(asyncio.shield(runner.task), timeout=max(0.1, self.lease_left(shard)))
            except TimeoutError:
                pass
        self.runners.pop(shard, None)
        self.trusted_until.pop(shard, None)
        runner.cancel()
        await self._release(keys=[lease_key(self.inbox, shard)], args=[f"{self.member} {runner.token}"])
        await self.wake_others()
        metrics.INBOX_OWNERSHIP_EVENTS.labels(self.inbox, "released").inc()
        log.info("%s.%d: released (token %d)", self.inbox, shard, runner.token)
        self._export()

    def shutdown_seconds(self) -> float:
        """The drain bound of a clean stop: the command in hand waits at most the lease
        that is left, every other step is a Redis call of at most the socket timeout;
        past it the shards not released run out with their leases (no command is lost:
        they stay in the held records, redone by the next owner)."""
        return self.timing.lease + env_float("REDIS_SOCKET_TIMEOUT_SECONDS")

    async def shutdown(self) -> None:
        """A clean stop (SIGTERM): hand every shard over at once, within
        `shutdown_seconds()` even if Redis does not answer (then best-effort: what is
        not released runs out with its lease)."""
        try:
            await asyncio.wait_for(self._hand_over(), self.shutdown_seconds())
        except TimeoutError:
            log.error(
                "%s: shards not handed over within %.0fs (Redis not answering?); their leases run out instead",
                self.inbox,
                self.shutdown_seconds(),
            )
        finally:
            for shard in list(self.runners):
                runner = self.runners.pop(shard)
                self.trusted_until.pop(shard, None)
                runner.cancel()
            self._export()

    async def _hand_over(self) -> None:
        """It leaves the members first, so the others, woken by each release, already
        compute the assignment without it."""
        try:
            await self.redis.zrem(members_key(self.inbox), self.member)
        except Exception:
            pass
        results = await asyncio.gather(*(self.release(shard) for shard in list(self.runners)), return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.error("%s: a release on shutdown failed: %s", self.inbox, result)
