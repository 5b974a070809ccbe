"""Let daphne send the protocol's own close codes Switchboard uses (1001, 1009, 1011, 1013).

autobahn's public sendClose() accepts only 1000 and 3000-4999, so daphne raises on
the close codes RFC 6455 and the IANA registry define for servers: "message too big"
(1009) and "try again later" (1013) among them, which Switchboard's clients rely on.
autobahn's sendCloseFrame() sends any code; this routes there the codes of
switchboard.closecodes.CloseCode (the one close-code table) that sendClose() refuses,
and no others: a code the table does not declare stays refused. Installed once, by
ws_gateway.asgi.

Upstream gap: autobahn-python#1642 ("Allign websocket close codes with RFC", open;
reported by a daphne user who needed 1012),
https://github.com/crossbario/autobahn-python/issues/1642.
"""

from __future__ import annotations

from daphne.ws_protocol import WebSocketProtocol

from switchboard.closecodes import CloseCode

# The table's codes autobahn's sendClose() refuses: all but 1000 and 3000-4999.
SERVER_CODES = frozenset(int(c) for c in CloseCode if c != CloseCode.NORMAL and not 3000 <= c <= 4999)
_original = WebSocketProtocol.serverClose


def _server_close(self, code=None):
    if code in SERVER_CODES:
        self.sendCloseFrame(code=code, isReply=False)
    else:
        _original(self, code)


def install() -> None:
    WebSocketProtocol.serverClose = _server_close
