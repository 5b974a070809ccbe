"""The service side of the gateway protocol: the base class of every inbox worker.

A service's inbox is a set of named channels on the `inbox` layer (chat.0 .. chat.N-1);
ws-gateway sends each connection's commands to the shard of its key, and one worker
consumes each shard, so commands for one room, user or document are handled one at a
time, in the order they arrived. Run it with ``python -m django inbox``.

Handlers are named for what they handle: ``gw_connect(cmd)``, ``gw_disconnect(cmd)``,
``frame_<frame type>(cmd, frame)`` for a client frame and ``receive_bytes(cmd)`` for a
binary one. An exception in a handler is logged, counted and answered with an
``internal_error`` frame; the worker goes on with the next command.
"""

from __future__ import annotations

import logging
import time

from channels.consumer import AsyncConsumer

from switchboard import metrics, publish
from switchboard.errors import ErrorCode
from switchboard.tokens import Identity

log = logging.getLogger(__name__)


class InboxConsumer(AsyncConsumer):
    service = "service"
    channel_layer_alias = "inbox"
    # Commands other services may send besides gw.* (e.g. "notify.create").
    commands: tuple[str, ...] = ()

    async def dispatch(self, message: dict) -> None:
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
