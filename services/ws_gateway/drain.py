"""Graceful shutdown of a ws-gateway process (daphne has none of its own).

On SIGTERM (Kubernetes' pod termination, supervisord's stop, a rolling deploy):

1. stop accepting: daphne's listening sockets close, so nginx or the Service sends
   new connections to the other gateways, and /readyz answers 503;
2. close every open WebSocket with 1001 GOING_AWAY, which the client library
   (@switchboard/client in clients/js, and any client that follows the close-code policy in closecodes.py)
   answers by reconnecting with jittered backoff, to another gateway;
3. wait until those sockets are gone or DRAIN_SECONDS pass, then hand over to
   Twisted's own SIGTERM handling, which stops daphne.

The whole drain takes at most DRAIN_SECONDS plus daphne's own stop, well inside
Kubernetes' terminationGracePeriodSeconds (k8s tests hold that) and supervisord's
stopwaitsecs (10 s).

Upstream gap: daphne#38 ("SIGTERM should gracefully close websockets",
https://github.com/django/daphne/issues/38) was closed in 2016 as done by Twisted; but
Twisted's SIGTERM handler stops the reactor at once, which drops every TCP connection
without a close frame (the client sees 1006), with no /readyz step that takes the
process out of the load balancer's rotation first.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from switchboard.closecodes import CloseCode
from ws_gateway import connections

log = logging.getLogger(__name__)

# Time clients get to answer our close frames before the process exits anyway.
DRAIN_SECONDS = 5.0

draining = False


def guard(app):
    """While draining: /readyz is 503 (out of rotation) and a WebSocket that still
    arrives on an already accepted TCP connection is refused."""

    async def wrapper(scope, receive, send):
        if draining:
            if scope["type"] == "http" and scope["path"] == "/readyz":
                await send(
                    {"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]}
                )
                await send({"type": "http.response.body", "body": b"draining\n"})
                return
            if scope["type"] == "websocket":
                await receive()  # websocket.connect
                await send({"type": "websocket.close", "code": int(CloseCode.GOING_AWAY)})  # before accept: 403
                return
        await app(scope, receive, send)

    return wrapper


async def drain() -> int:
    """Close every socket of this process with GOING_AWAY; returns how many were open."""
    global draining
    draining = True
    consumers = list(connections.registry.open.values())
    log.warning("draining: closing %d sockets with %d", len(consumers), CloseCode.GOING_AWAY)
    for consumer in consumers:
        try:
            await consumer.close(CloseCode.GOING_AWAY, "drain")
        except Exception:  # one broken socket must not stop the drain of the others
            log.exception("drain: could not close %s", getattr(consumer, "channel_name", "?"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DRAIN_SECONDS
    while connections.registry.open and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if connections.registry.open:
        log.warning("drain: %d sockets did not close in %.0f s", len(connections.registry.open), DRAIN_SECONDS)
    return len(consumers)


def install() -> None:
    """Take over SIGTERM in a daphne process, once its reactor runs.

    Twisted installs its own SIGTERM handler (stop the reactor at once) when the
    reactor starts, after this module is imported; so ours is installed in an
    "after startup" trigger, and calls Twisted's when the drain is done."""
    if "twisted.internet.reactor" not in sys.modules:
        return  # not under daphne (tests, management commands)
    from twisted.internet import reactor

    reactor.addSystemEventTrigger("after", "startup", take_over, reactor)


def take_over(reactor) -> None:
    """Replace the SIGTERM handler `reactor` installed with the drain: stop listening
    (every tcp.Port among the reactor's readers), drain(), then call the replaced
    handler. A second SIGTERM calls it at once."""
    from twisted.internet import tcp

    twisted_handler = signal.getsignal(signal.SIGTERM)
    loop = asyncio.get_event_loop()
    started = False

    def on_sigterm(signum, frame):
        nonlocal started
        if started:  # a second SIGTERM: stop now
            return twisted_handler(signum, frame) if callable(twisted_handler) else None
        started = True

        async def run():
            for reader in list(reactor.getReaders()):
                if isinstance(reader, tcp.Port):
                    reader.stopListening()
            try:
                await drain()
            finally:
                if callable(twisted_handler):
                    twisted_handler(signum, None)
                else:
                    reactor.stop()

        loop.call_soon_threadsafe(lambda: asyncio.ensure_future(run()))

    signal.signal(signal.SIGTERM, on_sigterm)
