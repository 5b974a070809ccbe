"""permessage-deflate on ws-gateway's daphne: off unless WS_PERMESSAGE_DEFLATE is set.

daphne does not expose autobahn's compression options, and autobahn's server refuses
every compression offer by default, so daphne runs without it; this makes that choice
a declared setting (config.py) instead of an accident. Compression costs tens of KB of
zlib state per socket (ARCHITECTURE.md "Pitfalls"), against about 30 KB for a whole
idle socket without it (docs/performance.md): enable it only where bandwidth is
scarcer than memory. Installed once, by ws_gateway.asgi, before daphne builds its
factory.

Upstream gap: daphne#236 ("Add way to pass custom options to WebSocketServerFactory",
closed: the maintainer would rather make the factory overridable),
https://github.com/django/daphne/issues/236, and the open pull request daphne#331
("Allow to accept websocket extensions"), https://github.com/django/daphne/pull/331.
"""

from __future__ import annotations

from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from daphne.ws_protocol import WebSocketFactory

from switchboard.config import env_bool

_original_reset = WebSocketFactory.resetProtocolOptions


def accept_deflate(offers):
    """Accept the client's first permessage-deflate offer, as offered."""
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)
    return None


def _reset_with_deflate(self):
    _original_reset(self)
    self.perMessageCompressionAccept = accept_deflate


def install() -> None:
    if env_bool("WS_PERMESSAGE_DEFLATE"):
        WebSocketFactory.resetProtocolOptions = _reset_with_deflate
    else:
        WebSocketFactory.resetProtocolOptions = _original_reset
