"""Who is opening a WebSocket, and from where: Origin check and authentication.

A browser always sends Origin, so an Origin not on ALLOWED_ORIGINS is refused before
the handshake completes. A client that sends no Origin is not a browser: it must bring
a token, since a cookie alone proves nothing about who holds it. Tokens are accepted,
in this order, from `Authorization: Bearer`, the subprotocol pair ["bearer", <token>]
(what browsers can send), and the seed's `?token=` query parameter; the session cookie
of the web UI comes last. The query string is never logged. A token is a Switchboard
token or one the shop's back end minted (tokens.verify_async, the one check).

A socket lives no longer than what let it in: a token's socket is closed at its `exp`
plus TOKEN_EXPIRY_GRACE_SECONDS (4001: refresh the token and reconnect), a session's
when the session no longer names its user (a password change: Django's session auth
hash; a logout; expiry), checked every SESSION_RECHECK_SECONDS (4401).

The Cookie header is parsed as Django parses it for HTTP requests (parse_cookie): a
browser holding one cookie the stdlib's strict SimpleCookie rejects (`a@b=1`, set by
some other app on the host) must still open sockets with its session cookie.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import parse_qsl

import jwt
from channels.db import database_sync_to_async
from django.conf import settings
from django.http.cookie import parse_cookie

from switchboard import tokens
from switchboard.config import env_list
from switchboard.routes import MAX_QUERY_PARAMS, TOKEN_PARAM, ParamError

BEARER_SUBPROTOCOL = "bearer"


@dataclass(frozen=True)
class Handshake:
    origin: str | None
    identity: tokens.Identity | None
    subprotocol: str | None
    expires_at: float | None = None  # a token's exp; None for a session
    session_key: str | None = None  # the session a cookie socket rides on


def headers_of(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def origin_allowed(origin: str | None) -> bool:
    return origin is None or origin in env_list("ALLOWED_ORIGINS")


def query_pairs(scope) -> list[tuple[str, str]]:
    """The query string's (name, value) pairs but the token. ParamError: more pairs than
    MAX_QUERY_PARAMS (the token included; parse_qsl stops counting there)."""
    try:
        pairs = parse_qsl(
            scope.get("query_string", b"").decode("latin-1"),
            keep_blank_values=True,
            max_num_fields=MAX_QUERY_PARAMS + 1,
        )
    except ValueError as exc:
        raise ParamError("too many query parameters") from exc
    return [(k, v) for k, v in pairs if k != TOKEN_PARAM]


def _token_from(scope, headers: dict[str, str]) -> tuple[str | None, str | None]:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip(), None
    offered = scope.get("subprotocols") or []
    if BEARER_SUBPROTOCOL in offered:
        i = offered.index(BEARER_SUBPROTOCOL)
        if i + 1 < len(offered):
            return offered[i + 1], BEARER_SUBPROTOCOL
    for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
        if k == TOKEN_PARAM:
            return v, None
    return None, None


def session_user(session_key: str):
    """The active user of a session, as Django's AuthenticationMiddleware finds it:
    django.contrib.auth.get_user checks the session's auth hash, so a session from
    before a password change (or a logout elsewhere, an expired session) is nobody."""
    from django.contrib.auth import get_user
    from django.contrib.sessions.backends.db import SessionStore

    user = get_user(SimpleNamespace(session=SessionStore(session_key=session_key)))
    return user if user.is_authenticated and user.is_active else None


@database_sync_to_async
def _session_identity(session_key: str) -> tokens.Identity | None:
    user = session_user(session_key)
    return tokens.Identity(user.pk, user.username, user.is_staff) if user else None


@database_sync_to_async
def sessions_ended(session_keys: set[str]) -> set[str]:
    """Of these sessions, the ones that no longer name an active user."""
    return {key for key in session_keys if session_user(key) is None}


def token_expiry(token: str) -> float:
    """The `exp` of a token tokens.verify() has just accepted (signature checked): a
    Switchboard or a shop token."""
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])


async def read_handshake(scope) -> Handshake:
    headers = headers_of(scope)
    origin = headers.get("origin")
    token, subprotocol = _token_from(scope, headers)
    identity = await tokens.verify_async(token) if token else None
    if identity is not None:
        return Handshake(origin, identity, subprotocol, expires_at=token_expiry(token))
    if token is None and origin is not None:
        session_key = parse_cookie(headers.get("cookie", "")).get(settings.SESSION_COOKIE_NAME)
        if session_key:
            identity = await _session_identity(session_key)
            if identity is not None:
                return Handshake(origin, identity, subprotocol, session_key=session_key)
    return Handshake(origin, None, subprotocol)
