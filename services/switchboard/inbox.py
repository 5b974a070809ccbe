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

`export_backlog()` (called by each service's HTTP process) puts the number of commands
waiting in each shard on /metrics: switchboard_inbox_backlog_commands.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from channels.consumer import AsyncConsumer
from django.conf import settings

from switchboard import metrics, ownership, publish, redisconn
from switchboard.errors import ErrorCode
from switchboard.routes import inbox_channels
from switchboard.tokens import Identity

log = logging.getLogger(__name__)


class InboxConsumer(AsyncConsumer):
    service = "service"
    channel_layer_alias = "inbox"
    # Commands other services may send besides gw.* (e.g. "notify.create").
    commands: tuple[str, ...] = ()

    async def dispatch(self, message: dict) -> None:
        # From an ownership.ShardRunner: the shard and token it was taken under, and the
        # future that tells the runner it is done (and how it went).
        claimed = message.pop("__claim__", None)
        token = ownership.current.set(claimed[0]) if claimed else None
        kind = message.get("type", "")
        label, handler, args = self._resolve(kind, message)
        start = time.perf_counter()
        outcome = "ok"
        try:
            if handler is None:
                outcome = "unknown"
                log.warning("%s inbox: no handler for %s", self.service, label)
            else:
                await handler(*args)
        except ownership.ShardLost as exc:
            # Another worker owns the shard now and handles (or handled) this command:
            # nothing of ours may reach anyone.
            outcome = "refused"
            log.warning("%s inbox: %s refused: %s", self.service, label, exc)
        except Exception:
            outcome = "error"
            log.exception("%s inbox: %s failed", self.service, label)
            if message.get("conn") and kind == "gw.receive":
                await publish.send_error(message["conn"], ErrorCode.INTERNAL, "the service failed on this frame")
            elif message.get("conn") and kind == "gw.connect":
                await publish.reject(message["conn"], 1011)
        finally:
            metrics.INBOX_COMMANDS.labels(self.service, label, outcome).inc()
            metrics.INBOX_LATENCY.labels(self.service, label).observe(time.perf_counter() - start)
            metrics.INBOX_HEARTBEAT.set(time.time())
            if claimed:
                ownership.current.reset(token)
                if not claimed[1].done():
                    claimed[1].set_result(outcome)

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
    host, named prefix + channel, and a worker takes them off with BZPOPMIN; ZCARD
    counts them without taking any. A named channel's messages are spread over every
    layer host (sends go round-robin), so the depth is the sum over the hosts."""
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
                for channel, waiting in zip(channels, pipe.execute(), strict=True):
                    depths[channel.rsplit(".", 1)[1]] += waiting
        return depths

    return read


def export_backlog() -> None:
    """Export this service's inbox backlog on the process's /metrics."""
    metrics.INBOX_BACKLOG.watch(settings.INBOX_NAME, backlog_reader(settings.INBOX_NAME))
