"""Let daphne send the protocol's own close codes (1001, 1009, 1011, 1013).

autobahn's public sendClose() accepts only 1000 and 3000-4999, so daphne raises on
the close codes RFC 6455 and the IANA registry define for servers: "message too big"
(1009) and "try again later" (1013) among them, which Switchboard's clients rely on.
autobahn's sendCloseFrame() sends any code; this routes the registered server codes
there. Installed once, by ws_gateway.asgi.
"""

from __future__ import annotations

from daphne.ws_protocol import WebSocketProtocol

SERVER_CODES = frozenset({1001, 1009, 1011, 1012, 1013})
_original = WebSocketProtocol.serverClose


def _server_close(self, code=None):
    if code in SERVER_CODES:
        self.sendCloseFrame(code=code, isReply=False)
    else:
        _original(self, code)


def install() -> None:
    WebSocketProtocol.serverClose = _server_close
