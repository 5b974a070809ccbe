"""What daphne holds per WebSocket, made smaller. Installed once, by ws_gateway.asgi.

Measured with tracemalloc on a gateway holding 1,000+ idle sockets (README
"Performance"), two things daphne and autobahn allocate per socket that need not be:

* the application's input queue: an asyncio.Queue (three deques and an Event, ~3 KB).
  A WebSocket's gets a SocketQueue instead (ws_gateway/socket_queue.py), which the
  consumer also uses as its channel's queue. HTTP requests keep asyncio.Queue (Django
  may wait on it from two tasks; SocketQueue has one reader).
* autobahn copies ~40 protocol options from the factory into every protocol
  instance's __dict__ (`_connectionMade`), ~2 KB of dict per socket. daphne has one
  WebSocket factory per process, so its options are set once on the protocol class,
  where autobahn finds them and copies nothing. A protocol built by any other factory
  still gets its own copies, as before.
"""

from __future__ import annotations

import asyncio
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
            setattr(cls, attr, getattr(self.factory, attr))
        cls._switchboard_copied = tuple(copied)
        cls._switchboard_options_of = owner = self.factory
    if owner is not self.factory:
        # Another factory's protocol: its own options, per instance, as autobahn does.
        for attr in cls._switchboard_copied:
            setattr(self, attr, getattr(self.factory, attr))
    _original_connection_made(self)


def install() -> None:
    Server.create_application = _create_application
    WebSocketProtocol._connectionMade = _connection_made
