"""Access tokens: ws-gateway issues them, every service verifies them locally.

HS256 JWTs, so no request crosses services to authenticate. Claims: sub (user id),
name (username), staff, iat, exp; the header's `kid` names the signing key.

The keys are SWITCHBOARD_JWT_KEYS (`kid:secret,kid:secret,...`), not Django's
SECRET_KEY: the first key signs, every listed key verifies. To rotate, put a new key
first and drop the old one once TOKEN_TTL_SECONDS has passed; nobody is logged out.
A token without a `kid`, or with one that is not listed, is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from switchboard.config import env, env_int

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


class KeyringError(ValueError):
    """SWITCHBOARD_JWT_KEYS is not a list of kid:secret pairs."""


def parse_keyring(value: str) -> dict[str, str]:
    """`kid:secret,kid:secret` as {kid: secret}, in order (the first one signs)."""
    keys: dict[str, str] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        kid, sep, secret = item.partition(":")
        kid, secret = kid.strip(), secret.strip()
        if not sep or not kid or not secret:
            raise KeyringError(f"SWITCHBOARD_JWT_KEYS: {kid or item[:8]!r} is not kid:secret")
        if kid in keys:
            raise KeyringError(f"SWITCHBOARD_JWT_KEYS: key id {kid!r} is listed twice")
        keys[kid] = secret
    if not keys:
        raise KeyringError("SWITCHBOARD_JWT_KEYS is empty")
    return keys


def keyring(value: str | None = None) -> dict[str, str]:
    """The accepted keys: `value` (a SWITCHBOARD_JWT_KEYS string), else this process's setting."""
    return parse_keyring(env("SWITCHBOARD_JWT_KEYS") if value is None else value)


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


def verify(token: str, keys: str | None = None) -> Identity | None:
    """The identity in a valid, unexpired token signed by an accepted key; None for anything else."""
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
