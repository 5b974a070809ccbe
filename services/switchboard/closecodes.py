"""Every WebSocket close code Switchboard sends, in one table.

Policy (written for client authors): 1xxx are the protocol's own; 4000-4399 mean
"reconnect with backoff" (the server went away or asked you to move); 4400-4499 mirror
HTTP 4xx and are terminal: change something (log in, pick another room) before
retrying. Terminal includes 4403 (also an open socket whose collab role was revoked)
and 4429 (the socket caps): a client that reconnected after them would only be refused
again, in a loop. clients/js and the collab editor page stop on them, reading this
table (clients/js/src/generated.js). Reasons stay under 123 bytes, the limit of a
close frame.
"""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000  # the client or server ended the session
    GOING_AWAY = 1001  # the gateway is shutting down; reconnect elsewhere
    MESSAGE_TOO_BIG = 1009  # a frame was larger than WS_MAX_MESSAGE_BYTES
    INTERNAL_ERROR = 1011  # a bug; reconnect with backoff
    TRY_AGAIN_LATER = 1013  # the owning service did not accept in time, or its inbox is full
    RECONNECT = 4000  # the server asks the client to reconnect (drain, rebalance)
    # The token's exp (plus TOKEN_EXPIRY_GRACE_SECONDS) passed: get a fresh token, reconnect.
    TOKEN_EXPIRED = 4001
    # A binary-only (Yjs) client over its rate limit: it cannot read an error frame, so
    # it is closed and its reconnect's sync delivers what was refused.
    RATE_LIMITED = 4029
    SLOW_CONSUMER = 4008  # the client did not read its frames fast enough
    BAD_REQUEST = 4400  # the URL or parameters are invalid
    UNAUTHORIZED = 4401  # no token or session, or an invalid or expired one
    # Authenticated, but not allowed on this route or object; also every open socket of a
    # user on a collab document when the owner revokes their role (a gw.close with `user`
    # on the document's group, before any later edit). Terminal: a reconnect is refused.
    FORBIDDEN = 4403
    NOT_FOUND = 4404  # no such route, room or document
    # The user or client IP has WS_MAX_SOCKETS_PER_USER / _PER_IP open. Terminal: close
    # another socket first (an automatic reconnect would take no slot, only retry).
    TOO_MANY_SOCKETS = 4429


REASONS: dict[CloseCode, str] = {
    CloseCode.NORMAL: "bye",
    CloseCode.GOING_AWAY: "server shutting down, reconnect",
    CloseCode.MESSAGE_TOO_BIG: "frame too large",
    CloseCode.INTERNAL_ERROR: "internal error",
    CloseCode.TRY_AGAIN_LATER: "service unavailable, try again later",
    CloseCode.RECONNECT: "reconnect",
    CloseCode.TOKEN_EXPIRED: "token expired, refresh it and reconnect",
    CloseCode.RATE_LIMITED: "rate limited, reconnect after a backoff",
    CloseCode.SLOW_CONSUMER: "client too slow",
    CloseCode.BAD_REQUEST: "bad request",
    CloseCode.UNAUTHORIZED: "authentication required",
    CloseCode.FORBIDDEN: "forbidden",
    CloseCode.NOT_FOUND: "not found",
    CloseCode.TOO_MANY_SOCKETS: "too many open sockets, close one",
}


def may_reconnect(code: int) -> bool:
    """Whether a well-behaved client reconnects (with backoff) after this code."""
    return not (4400 <= code <= 4499)
