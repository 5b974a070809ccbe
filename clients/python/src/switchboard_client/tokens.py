"""Connection tokens for the shop's own users, minted in the shop's back end.

The browser brings the token to Switchboard (a socket's `Authorization` header,
`?token=` or `["bearer", token]` subprotocol, or a REST call's header); Switchboard
checks it against SHOP_JWT_KEYS (HS256) or SHOP_JWKS (RS256/ES256) and knows the user
from then on by `sub` (docs/security.md, "Shop tokens"). The claims are exactly the
ones Switchboard reads: sub, name, staff, iat, exp, and aud/iss when asked for.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import jwt

# The shop's key when mint_token is given none: "kid:secret" (HS256), the same pair as
# one entry of Switchboard's SHOP_JWT_KEYS.
KEY_ENV = "SWITCHBOARD_SHOP_KEY"
DEFAULT_TTL = 300


@dataclass(frozen=True)
class SigningKey:
    """A key the shop signs with: HS256 with a shared secret, or RS256/ES256 with a
    private key (PEM text or bytes, or a `cryptography` key) whose public half
    Switchboard has in its SHOP_JWKS under the same kid."""

    kid: str
    key: Any
    algorithm: str = "HS256"

    @classmethod
    def parse(cls, value: str) -> SigningKey:
        """'kid:secret' (the form of SHOP_JWT_KEYS) as an HS256 key."""
        kid, sep, secret = value.partition(":")
        if not sep or not kid.strip() or not secret.strip():
            raise ValueError(f"a shop key is kid:secret ({KEY_ENV} or key=)")
        return cls(kid.strip(), secret.strip())

    def __post_init__(self):
        if self.algorithm not in ("HS256", "RS256", "ES256"):
            raise ValueError(f"Switchboard accepts HS256, RS256 and ES256 shop tokens, not {self.algorithm}")

    def __repr__(self) -> str:  # never a secret in a log line or a traceback
        return f"SigningKey(kid={self.kid!r}, algorithm={self.algorithm!r})"


def _key(key: SigningKey | str | None) -> SigningKey:
    if isinstance(key, SigningKey):
        return key
    if key is None:
        key = os.environ.get(KEY_ENV, "")
        if not key:
            raise ValueError(f"no shop key: pass key= or set {KEY_ENV}=kid:secret")
    return SigningKey.parse(key)


def mint_token(
    sub: str | int,
    name: str | None,
    staff: bool = False,
    ttl: float = DEFAULT_TTL,
    *,
    key: SigningKey | str | None = None,
    audience: str | None = None,
    issuer: str | None = None,
    now: float | None = None,
) -> str:
    """A connection token for the shop's user `sub` (its id; an int is sent as its
    string), named `name` (Switchboard's username follows the latest token), staff or
    not, valid `ttl` seconds. `key`: a SigningKey, a 'kid:secret' string, or None for
    $SWITCHBOARD_SHOP_KEY. `audience`/`issuer`: Switchboard's SHOP_JWT_AUDIENCE /
    SHOP_JWT_ISSUER, when it sets them."""
    sub = str(sub)
    if not 0 < len(sub) <= 255:
        raise ValueError("sub must be 1..255 characters")
    if not isinstance(staff, bool):
        raise TypeError("staff must be a bool (Switchboard refuses anything else)")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    signing = _key(key)
    now = time.time() if now is None else now
    claims: dict[str, Any] = {"sub": sub, "staff": staff, "iat": int(now), "exp": int(now + ttl)}
    if name is not None:
        claims["name"] = name
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    return jwt.encode(claims, signing.key, algorithm=signing.algorithm, headers={"kid": signing.kid})
