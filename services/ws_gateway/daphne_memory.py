"""What daphne holds per WebSocket, made smaller. Installed once, by ws_gateway.asgi.

Upstream gap: autobahn-python#640 ("Reduce WebSocket connection memory footprint",
open), https://github.com/crossbario/autobahn-python/issues/640; for daphne's
asyncio.Queue per connection no upstream issue was found.

Measured with tracemalloc on a gateway holding 1,000+ idle sockets
(bench/results/hot-path-changes.md), two things daphne and autobahn allocate per socket that need not be:

* the application's input queue: an asyncio.Queue (three deques and an Event, ~3 KB).
  A WebSocket's gets a SocketQueue instead (ws_gateway/socket_queue.py), which the
  consumer also uses as its channel's queue. HTTP requests keep asyncio.Queue (Django
  may wait on it from two tasks; SocketQueue has one reader).
* autobahn copies ~40 protocol options from the factory into every protocol
  instance's __dict__ (`_connectionMade`), ~2 KB of dict per socket. daphne has one
  WebSocket factory per process, so its options are set once on the protocol class,
  where autobahn finds them and copies nothing. A protocol built by any other factory
  still gets its own copies, as before.
* the handshake: autobahn keeps the raw request and its parsed headers, daphne the
  scope's header list, for the socket's whole life, though only the handshake reads
  them (the consumer reads the scope's headers in websocket_connect, before it
  accepts). Once the socket is open they are emptied.
"""

from __future__ import annotations

import asyncio
import types
from functools import partial

from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol

from ws_gateway.socket_queue import SocketQueue

_original_connection_made = WebSocketProtocol._connectionMade


def _create_application(self, protocol, scope):
    """daphne's Server.create_application (4.x), with a SocketQueue for WebSockets."""
    assert "application_instance" not in self.connections[protocol]
    input_queue = SocketQueue() if scope.get("type") == "websocket" else asyncio.Queue()
    scope.setdefault("asgi", {"version": "3.0"})
    application_instance = self.application(
        scope=scope,
        receive=input_queue.get,
        send=partial(self.handle_reply, protocol),
    )
    if protocol not in self.connections:
        return None
    self.connections[protocol]["application_instance"] = asyncio.ensure_future(
        application_instance,
        loop=asyncio.get_event_loop(),
    )
    return input_queue


def _connection_made(self):
    cls = type(self)
    owner = cls.__dict__.get("_switchboard_options_of")
    if owner is None:
        copied = [attr for attr in self.CONFIG_ATTRS if not hasattr(cls, attr)]
        for attr in copied:
            value = getattr(self.factory, attr)
            # A plain function on a class would be bound as a method (e.g. the
            # permessage-deflate accept callback): keep it a plain callable.
            setattr(cls, attr, staticmethod(value) if isinstance(value, types.FunctionType) else value)
        cls._switchboard_copied = tuple(copied)
        cls._switchboard_options_of = owner = self.factory
    if owner is not self.factory:
        # Another factory's protocol: its own options, per instance, as autobahn does.
        for attr in cls._switchboard_copied:
            setattr(self, attr, getattr(self.factory, attr))
    _original_connection_made(self)


_original_on_open = WebSocketProtocol.onOpen


def _on_open(self):
    _original_on_open(self)
    # Read by the handshake only; the scope's list is the same object (see above).
    headers = getattr(self, "clean_headers", None)
    if headers is not None:
        headers.clear()
    self.http_headers.clear()  # also the ConnectionRequest's headers; daphne reads only its path
    self.http_request_data = b""


def install() -> None:
    Server.create_application = _create_application
    WebSocketProtocol._connectionMade = _connection_made
    WebSocketProtocol.onOpen = _on_open
