"""Access tokens: ws-gateway issues them, every service verifies them locally.

HS256 JWTs, so no request crosses services to authenticate. Claims: sub (user id),
name (username), staff, iat, exp; the header's `kid` names the signing key.

verify() is the one place a bearer token is checked, for every REST route
(switchboard/http.py) and every socket (ws_gateway/wsauth.py): a Switchboard token,
else a token the shop's own back end signed (switchboard/shoptokens.py), whose subject
is mapped to its local user, made on first sight: by ws-gateway itself, which owns users
(ws_gateway/shopusers.py, named by its Django setting SHOP_SUBJECT_RESOLVER), or by
asking ws-gateway (switchboard/users.py). Either way a service sees the local user id.

The keys are SWITCHBOARD_JWT_KEYS (`kid:secret,kid:secret,...`), not Django's
SECRET_KEY: the first key signs, every listed key verifies. To rotate, put a new key
first and drop the old one once TOKEN_TTL_SECONDS has passed; nobody is logged out.
A token without a `kid`, or with one that is not listed, is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from switchboard.config import KeyringError, env, env_int, parse_keyring

__all__ = ["KeyringError", "parse_keyring"]  # re-exported: the one keyring parser lives in config

ALGORITHM = "HS256"
# Tokens issued by one service for calls to another (e.g. the dashboard counting
# users) carry this subject; they are short-lived staff identities.
SERVICE_USER_ID = 0


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is on the other end: enough to authorize without a database."""

    id: int
    username: str
    is_staff: bool = False

    def as_dict(self) -> dict:
        return {"id": self.id, "username": self.username, "is_staff": self.is_staff}

    @classmethod
    def from_dict(cls, data: dict) -> Identity:
        return cls(int(data["id"]), str(data["username"]), bool(data.get("is_staff", False)))


def keyring(value: str | None = None) -> dict[str, str]:
    """The accepted keys: `value` (a SWITCHBOARD_JWT_KEYS string), else this process's setting."""
    keys = parse_keyring(env("SWITCHBOARD_JWT_KEYS") if value is None else value)
    if not keys:
        raise KeyringError("SWITCHBOARD_JWT_KEYS is empty")
    return keys


def issue(identity: Identity, ttl: int | None = None, now: float | None = None, keys: str | None = None) -> str:
    """A token for `identity`, signed with the first key of `keys` (default: the setting)."""
    now = time.time() if now is None else now
    ttl = env_int("TOKEN_TTL_SECONDS") if ttl is None else ttl
    kid, secret = next(iter(keyring(keys).items()))
    claims = {
        "sub": str(identity.id),
        "name": identity.username,
        "staff": identity.is_staff,
        "iat": int(now),
        "exp": int(now + ttl),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})


class AuthUnavailable(RuntimeError):
    """A valid shop token whose local user cannot be known now (ws-gateway does not
    answer): a 503 to retry, not a 401 that would make the client drop its token."""


def verify(token: str, keys: str | None = None) -> Identity | None:
    """The identity of a valid, unexpired token: a Switchboard token signed by an accepted
    key (`keys`, default the setting), else a shop token as its local user; None for
    anything else. A shop token may block (a database, a call to ws-gateway, a JWKS
    fetch): async code calls verify_async. Raises AuthUnavailable (see there)."""
    identity = verify_own(token, keys)
    if identity is not None or keys is not None:
        return identity
    return _verify_shop(token)


async def verify_async(token: str) -> Identity | None:
    """verify() for the event loop: a Switchboard token in place (the connect hot path),
    a shop token in a worker thread with Django's database connection handling."""
    identity = verify_own(token)
    if identity is not None:
        return identity
    from switchboard import shoptokens

    if not shoptokens.configured():
        return None
    from channels.db import database_sync_to_async

    return await database_sync_to_async(_verify_shop)(token)


def _verify_shop(token: str) -> Identity | None:
    from switchboard import shoptokens

    if not shoptokens.configured():
        return None
    claims = shoptokens.verify(token)
    return None if claims is None else _shop_resolver()(claims, token)


def _shop_resolver():
    """(claims, token) -> the local Identity: ws-gateway's own (its settings name it),
    every other service's asks ws-gateway."""
    from django.conf import settings
    from django.utils.module_loading import import_string

    return import_string(getattr(settings, "SHOP_SUBJECT_RESOLVER", "switchboard.users.shop_identity"))


def verify_own(token: str, keys: str | None = None) -> Identity | None:
    """The identity in a valid, unexpired Switchboard token signed by an accepted key; None for anything else."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        secret = keyring(keys).get(kid) if isinstance(kid, str) else None
        if secret is None:
            return None
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "name"]},
        )
        return Identity(int(claims["sub"]), str(claims["name"]), bool(claims.get("staff", False)))
    except (jwt.PyJWTError, ValueError, TypeError):
        return None


def service_token(service: str, ttl: int = 300) -> str:
    """A short-lived staff token one service uses to call another's REST API.

    Only for calls that are the service's own business (the dashboard's counts); work
    done for a user (a report) calls with `on_behalf_of(user)` so that the owning
    service applies that user's rights."""
    return issue(Identity(SERVICE_USER_ID, f"service:{service}", True), ttl=ttl)


def on_behalf_of(identity: Identity, ttl: int = 300) -> str:
    """A short-lived token carrying `identity` itself, for a service acting for that user."""
    return issue(identity, ttl=ttl)
