"""The service side of the gateway protocol: the base class of every inbox worker.

A service's inbox is a set of named channels on the `inbox` layer (chat.0 .. chat.N-1);
ws-gateway sends each connection's commands to the shard of its key, and one worker
consumes each shard, so commands for one room, user or document are handled one at a
time, in the order they arrived. Run it with ``python -m django inbox``; with several
replicas, switchboard.ownership decides which replica consumes which shard (one at a
time, fenced) and hands each shard's commands to one instance of this class.

Handlers are named for what they handle: ``gw_connect(cmd)``, ``gw_disconnect(cmd)``,
``frame_<frame type>(cmd, frame)`` for a client frame and ``receive_bytes(cmd)`` for a
binary one. An exception in a handler is logged, counted and answered with an
``internal_error`` frame; the worker goes on with the next command.

Batches: a consumer that lists command types in ``batch_types`` is handed a lane's run
of consecutive commands of those types as one call of ``handle_batch(cmds)`` (in their
order; switchboard.ownership decides the run), so it can do once what each would do
on its own (chat: one presence check, one database trip and one online-list flush for
a storm's connects into a room). Each command is still counted and acknowledged on
its own, once the batch is done.

`export_backlog()` (called by each service's HTTP process) puts the number of commands
waiting in each shard on /metrics: switchboard_inbox_backlog_commands.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from channels.consumer import AsyncConsumer
from django.conf import settings

from switchboard import metrics, ownership, publish, redisconn
from switchboard.closecodes import CloseCode
from switchboard.errors import ErrorCode
from switchboard.routes import inbox_channels
from switchboard.tokens import Identity

log = logging.getLogger(__name__)


class InboxConsumer(AsyncConsumer):
    service = "service"
    channel_layer_alias = "inbox"
    # Commands other services may send besides gw.* (e.g. "notify.create").
    commands: tuple[str, ...] = ()
    # Command types whose consecutive runs in a lane are handled by one handle_batch call.
    batch_types: frozenset[str] = frozenset()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.in_hand: set[asyncio.Task] = set()

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # The shard was lost or handed over: its commands in hand stop here (they
            # stay in its held record, for the next owner to redo).
            for task in list(self.in_hand):
                task.cancel()

    async def dispatch(self, message: dict) -> None:
        if "__claim__" in message:
            # From an ownership.ShardRunner, which decides what may run side by side
            # (one key's commands one at a time, different keys' at once): each runs
            # in its own task, and the runner hears of its end by the claim's future.
            task = asyncio.ensure_future(self.handle_command(message))
            self.in_hand.add(task)
            task.add_done_callback(self.in_hand.discard)
            return
        if message.get("type") == ownership.BATCH:
            task = asyncio.ensure_future(self.handle_batch_message(message["commands"]))
            self.in_hand.add(task)
            task.add_done_callback(self.in_hand.discard)
            return
        await self.handle_command(message)

    async def handle_command(self, message: dict) -> None:
        await self._step([message], self._handle_one)

    async def handle_batch_message(self, cmds: list[dict]) -> None:
        """A batch from a lane: handle_batch once. A batch succeeds or fails as a whole:
        its commands were one step."""
        await self._step(cmds, self.handle_batch)

    async def handle_batch(self, cmds: list[dict]) -> None:
        """A run of commands of `batch_types`, in order. This default handles each with
        its own handler; a consumer overrides it to share the work of the run."""
        for cmd in cmds:
            _, handler, args = self._resolve(cmd.get("type", ""), cmd)
            if handler is not None:
                await handler(*args)

    async def _handle_one(self, cmds: list[dict]) -> str | None:
        message = cmds[0]
        label, handler, args = self._resolve(message.get("type", ""), message)
        if message.pop("__shed__", False):
            # Its key's lane is over INBOX_LANE_BACKLOG (ownership.SHEDDABLE): the
            # client is told to come back, as by the gateway when a shard is full.
            await publish.reject(message["conn"], CloseCode.TRY_AGAIN_LATER)
            return "shed"
        if handler is None:
            log.warning("%s inbox: no handler for %s", self.service, label)
            return "unknown"
        await handler(*args)
        return None

    async def _step(self, cmds: list[dict], work: Callable) -> None:
        """Run `work(cmds)` as one step, then count each command's outcome and report it
        to the runner that handed it in (the claim's future)."""
        # The shard and token each was taken under, and the future that tells the runner
        # it is done (and how it went); none when a test hands a command in directly.
        # Every claim of a batch has the shard and token of its lane (check_fence's facts).
        claims = [cmd.pop("__claim__", None) for cmd in cmds]
        first = next((c for c in claims if c), None)
        token = ownership.current.set(first[0]) if first else None
        labels = [self._resolve(cmd.get("type", ""), cmd)[0] for cmd in cmds]
        what = labels[0] if len(cmds) == 1 else f"a batch of {len(cmds)}"
        start = time.perf_counter()
        outcome = "ok"
        try:
            outcome = await work(cmds) or "ok"
        except asyncio.CancelledError:
            # The shard went while it ran: unfinished, so it stays in the shard's held
            # record and the next owner redoes it (the runner must not count it done).
            outcome = "cancelled"
            raise
        except ownership.ShardLost as exc:
            # Another worker owns the shard now and handles (or handled) these commands:
            # nothing of ours may reach anyone.
            outcome = "refused"
            log.warning("%s inbox: %s refused: %s", self.service, what, exc)
        except Exception:
            outcome = "error"
            log.exception("%s inbox: %s failed", self.service, what)
            for cmd in cmds:
                if cmd.get("conn") and cmd.get("type") == "gw.receive":
                    await publish.send_error(cmd["conn"], ErrorCode.INTERNAL, "the service failed on this frame")
                elif cmd.get("conn") and cmd.get("type") == "gw.connect":
                    await publish.reject(cmd["conn"], 1011)
        finally:
            elapsed = time.perf_counter() - start
            for label, claimed in zip(labels, claims, strict=True):
                if outcome != "cancelled":
                    metrics.INBOX_COMMANDS.labels(self.service, label, outcome).inc()
                metrics.INBOX_LATENCY.labels(self.service, label).observe(elapsed)
                if claimed:
                    future = claimed[1]
                    if outcome == "cancelled":
                        future.cancel()
                    elif not future.done():
                        future.set_result(outcome)
            metrics.INBOX_HEARTBEAT.set(time.time())
            if first:
                ownership.current.reset(token)

    def _resolve(self, kind: str, message: dict):
        if kind == "gw.receive":
            if "bytes" in message:
                return "bytes", getattr(self, "receive_bytes", None), (message,)
            frame = message.get("frame") or {}
            ftype = str(frame.get("type", ""))
            handler = getattr(self, f"frame_{ftype}", None) if ftype.isidentifier() else None
            return f"frame.{ftype}"[:48], handler, (message, frame)
        name = kind.replace(".", "_")
        allowed = kind in ("gw.connect", "gw.disconnect") or kind in self.commands
        handler = getattr(self, name, None) if allowed else None
        # Other commands (e.g. notify.create from another service) are labelled by
        # their own name only when handled, to keep metric labels bounded.
        return (kind if handler else "other"), handler, (message,)

    @staticmethod
    def identity(cmd: dict) -> Identity:
        return Identity.from_dict(cmd["user"])


def backlog_reader(inbox: str) -> Callable[[], dict[str, int]]:
    """A function returning {shard number: commands waiting} for the inbox's shards.

    channels_redis's core layer keeps a channel's messages in one sorted set per Redis
    host, named prefix + channel; ZCARD counts them without taking any. The shard's
    owner takes commands ahead into its lanes (switchboard.ownership), keeping each in
    the shard's held record until it is finished: HLEN counts those, so the gauge is
    every command not yet handled, wherever it waits. A named channel's messages are
    spread over every layer host (sends go round-robin), so the depth is the sum over
    the hosts."""
    config = settings.CHANNEL_LAYERS["inbox"]["CONFIG"]
    prefix = config["prefix"]
    channels = inbox_channels(inbox)
    # Short timeouts: this runs in a scrape, which must not hang on a dead Redis.
    clients = [redisconn.sync_client_for(host, socket_timeout=2, socket_connect_timeout=2) for host in config["hosts"]]

    def read() -> dict[str, int]:
        depths = dict.fromkeys((c.rsplit(".", 1)[1] for c in channels), 0)
        for client in clients:
            with client.pipeline(transaction=False) as pipe:
                for channel in channels:
                    pipe.zcard(prefix + channel)
                    pipe.hlen(ownership.held_key(prefix, channel))
                counts = pipe.execute()
                for i, channel in enumerate(channels):
                    depths[channel.rsplit(".", 1)[1]] += counts[2 * i] + counts[2 * i + 1]
        return depths

    return read


def export_backlog() -> None:
    """Export this service's inbox backlog on the process's /metrics."""
    metrics.INBOX_BACKLOG.watch(settings.INBOX_NAME, backlog_reader(settings.INBOX_NAME))
