"""Test tools for shop tokens: the keys a shop's back end would hold, generated per test,
and the tokens it would mint with them (unit tests of every service, tests-e2e).

`ShopKey.rsa(kid)` / `ShopKey.ec(kid)` make a fresh key pair; `.jwk` is its public half
as a JWKS file or endpoint publishes it, `.mint(...)` a token signed with the private
half. `mint_hs256` signs with a `kid:secret` of SHOP_JWT_KEYS. `forge_hs256` signs by
hand, whatever the key is, for the attacks PyJWT itself refuses to encode (an HMAC
keyed with a public key: the algorithm-confusion attack).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


def claims(
    sub: str = "shop-1", name: str | None = "Shop Alice", staff: bool = False, ttl: float = 300, **extra
) -> dict:
    now = time.time()
    out: dict[str, Any] = {"sub": sub, "staff": staff, "iat": int(now), "exp": int(now + ttl), **extra}
    if name is not None:
        out["name"] = name
    return out


def mint_hs256(kid: str, secret: str, **claim_args) -> str:
    return jwt.encode(claims(**claim_args), secret, algorithm="HS256", headers={"kid": kid})


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def forge_hs256(header: dict, payload: dict, secret: bytes) -> str:
    """An HS256 JWT keyed with any bytes (PyJWT will not encode with a PEM as secret)."""
    signing_input = _b64(json.dumps(header).encode()) + b"." + _b64(json.dumps(payload).encode())
    return (signing_input + b"." + _b64(hmac.new(secret, signing_input, hashlib.sha256).digest())).decode()


@dataclass(frozen=True)
class ShopKey:
    kid: str
    algorithm: str  # RS256 or ES256
    private_key: Any

    @classmethod
    def rsa(cls, kid: str) -> ShopKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> ShopKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    @property
    def jwk(self) -> dict:
        to_jwk = RSAAlgorithm.to_jwk if self.algorithm == "RS256" else ECAlgorithm.to_jwk
        return {**to_jwk(self.private_key.public_key(), as_dict=True), "kid": self.kid, "use": "sig"}

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def mint(self, **claim_args) -> str:
        return jwt.encode(claims(**claim_args), self.private_key, algorithm=self.algorithm, headers={"kid": self.kid})


def write_jwks(path: Path, *keys: ShopKey | dict) -> None:
    """Replace a JWKS file at once (a rename: a reader never sees half a file)."""
    body = {"keys": [k.jwk if isinstance(k, ShopKey) else k for k in keys]}
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body))
    os.replace(tmp, path)
