"""Stop autobahn from colouring debug-log arguments for every frame daphne sends.

autobahn's WebSocketProtocol.sendData builds the arguments of a debug log line on each
call (hltype/hlval, which style text with click) before the logger decides to drop it:
about a tenth of ws-gateway's CPU when fanning out to 1,000 sockets
(bench/profiles/gateway-fanout1000-after.txt). The helpers only decorate log text, so
autobahn's websocket module gets plain ones. Installed once, by ws_gateway.asgi.

Upstream gap: autobahn builds debug-log arguments before the level check; no upstream
issue was found (searched crossbario/autobahn-python for hltype/hlval and debug-log
cost).
"""

from __future__ import annotations

from autobahn.websocket import protocol


def _plain(value):
    return value


def install() -> None:
    protocol.hltype = _plain
    protocol.hlval = _plain
    # Every new connection pretty-printed its ~40 options for a debug line (1.5 % of
    # the loop while 10,000 sockets connect, bench/profiles); the raw list will do.
    protocol.pformat = _plain
