"""Access tokens: ws-gateway issues them, every service verifies them locally.

HS256 JWTs signed with SWITCHBOARD_SECRET_KEY, so no request crosses services to
authenticate. Claims: sub (user id), name (username), staff, iat, exp.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from switchboard.config import env, env_int

ALGORITHM = "HS256"
# Tokens issued by one service for calls to another (e.g. the report worker reading
# chat history) carry this subject; they are short-lived staff identities.
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


def issue(identity: Identity, ttl: int | None = None, now: float | None = None) -> str:
    now = time.time() if now is None else now
    ttl = env_int("TOKEN_TTL_SECONDS") if ttl is None else ttl
    claims = {
        "sub": str(identity.id),
        "name": identity.username,
        "staff": identity.is_staff,
        "iat": int(now),
        "exp": int(now + ttl),
    }
    return jwt.encode(claims, env("SWITCHBOARD_SECRET_KEY"), algorithm=ALGORITHM)


def verify(token: str) -> Identity | None:
    """The identity in a valid, unexpired token; None for anything else."""
    try:
        claims = jwt.decode(
            token,
            env("SWITCHBOARD_SECRET_KEY"),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "name"]},
        )
        return Identity(int(claims["sub"]), str(claims["name"]), bool(claims.get("staff", False)))
    except (jwt.PyJWTError, ValueError, TypeError):
        return None


def service_token(service: str, ttl: int = 300) -> str:
    """A short-lived staff token one service uses to call another's REST API."""
    return issue(Identity(SERVICE_USER_ID, f"service:{service}", True), ttl=ttl)
