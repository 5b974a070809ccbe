"""Connection tokens the shop's own back end mints for its users: which keys verify
them, with which algorithm, and which claims they must carry.

Two key sources, both optional (docs/security.md, "Shop tokens"):

* SHOP_JWT_KEYS, `kid:secret` pairs parsed by the one keyring parser
  (config.parse_keyring): HS256 only.
* SHOP_JWKS, a JWKS file (re-read when it changes) or an http(s) URL (fetched with
  PyJWT's PyJWKClient, kept SHOP_JWKS_CACHE_SECONDS, and its last good set kept through
  an outage of the shop's endpoint): RS256 for an RSA key, ES256 for an EC P-256 key.

The token's `kid` picks the key and the key fixes the algorithm; the header's `alg`
is only compared with it. So an HS256 token "signed" with a JWKS public key (the
classic algorithm confusion), `alg: none`, or a JWK of any other type or algorithm
(an `oct` key, RS512, P-384) verifies nothing. A token without a `kid`, or naming one
no source lists (a rotated-out key), is refused.

Claims: `sub` (the shop's user id, a string of 1..255 characters) and `exp` required;
`name` (a string) and `staff` (a boolean; absent is false) optional; `aud` must equal
SHOP_JWT_AUDIENCE (and be absent while that is unset), `iss` must equal SHOP_JWT_ISSUER
when that is set. This module only says whether a token is the shop's and what it
claims; tokens.verify maps the subject to its local user.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

from switchboard.config import env, env_float, value

log = logging.getLogger(__name__)

HS_ALGORITHM = "HS256"
# The one algorithm each JWK type may verify; any other JWK is not a key of ours.
JWK_ALGORITHMS = {"RSA": "RS256", "EC": "ES256"}
MAX_SUB = 255
# A token naming a kid the cached set lacks may be the shop's freshly rotated key, so
# the URL is fetched again, but not more often than this: unknown kids are free to send.
UNKNOWN_KID_REFETCH_SECONDS = 30.0
JWKS_FETCH_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ShopClaims:
    """What a verified shop token says about its user."""

    sub: str
    name: str | None
    staff: bool
    exp: float


def configured() -> bool:
    """Whether this process accepts shop tokens at all (a key source is set)."""
    return bool(env("SHOP_JWT_KEYS").strip() or env("SHOP_JWKS").strip())


def verify(token: str) -> ShopClaims | None:
    """The claims of a valid, unexpired shop token; None for anything else."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    if not isinstance(kid, str) or not kid:
        return None
    key, algorithm = _key_for(kid)
    if key is None:
        return None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=env("SHOP_JWT_AUDIENCE") or None,
            issuer=env("SHOP_JWT_ISSUER") or None,
            options={"require": ["sub", "exp"]},
        )
    except (jwt.PyJWTError, ValueError, TypeError):
        return None
    return _claims(claims)


def _claims(claims: dict) -> ShopClaims | None:
    sub, name, staff = claims.get("sub"), claims.get("name"), claims.get("staff", False)
    # Typed strictly: `"staff": "false"` is a shop bug that must not make a staff user.
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUB:
        return None
    if name is not None and not isinstance(name, str):
        return None
    if not isinstance(staff, bool):
        return None
    name = (name.strip() or None) if name is not None else None  # blank: not named by this token
    return ShopClaims(sub, name, staff, float(claims["exp"]))


def _key_for(kid: str):
    """(key, the one algorithm it verifies) for `kid`, or (None, None)."""
    secret = value("SHOP_JWT_KEYS").get(kid)
    if secret is not None:
        return secret, HS_ALGORITHM
    source = env("SHOP_JWKS").strip()
    if not source:
        return None, None
    jwk = _jwks(source).key(kid)
    if jwk is None:
        return None, None
    return jwk.key, jwk.algorithm_name


def _usable(jwk: PyJWK) -> bool:
    # PyJWK names an algorithm from the JWK's own `alg` or its type (an `oct` key would be
    # HS256): only the one algorithm of its type is accepted, for signatures.
    return (
        bool(jwk.key_id)
        and jwk.public_key_use in ("sig", None)
        and JWK_ALGORITHMS.get(jwk.key_type or "") == jwk.algorithm_name
    )


def _index(jwk_set: PyJWKSet | None) -> dict[str, PyJWK]:
    keys: dict[str, PyJWK] = {}
    for jwk in jwk_set.keys if jwk_set is not None else ():
        if _usable(jwk):
            keys.setdefault(jwk.key_id, jwk)  # a kid listed twice: the first one
    return keys


class _FileKeys:
    """A JWKS file, parsed again whenever its mtime, size or inode changes (so replacing
    it rotates keys without a restart)."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.stamp: tuple | None = ()
        self.keys: dict[str, PyJWK] = {}
        self.lock = threading.Lock()

    def key(self, kid: str) -> PyJWK | None:
        with self.lock:
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                stamp = None
            if stamp != self.stamp:
                self.stamp, self.keys = stamp, self._load(stamp)
            return self.keys.get(kid)

    def _load(self, stamp) -> dict[str, PyJWK]:
        if stamp is None:
            log.warning("SHOP_JWKS file %s cannot be read: shop tokens of its keys are refused", self.path)
            return {}
        try:
            data = json.loads(self.path.read_text())
            if isinstance(data, dict) and not data.get("keys"):
                return {}  # an empty set is a valid "no keys yet"
            keys = _index(PyJWKSet.from_dict(data))
        except (OSError, ValueError, AttributeError, jwt.PyJWTError) as exc:
            log.warning("SHOP_JWKS file %s is not a JWK set (%s): its keys are refused", self.path, exc)
            return {}
        if not keys:
            log.warning("SHOP_JWKS file %s holds no RS256/ES256 signing key with a kid", self.path)
        return keys


class _UrlKeys:
    """A JWKS URL through PyJWKClient's cache; its last good set survives a failed fetch,
    so an outage of the shop's endpoint does not refuse every user once the cache ages."""

    def __init__(self, url: str, lifespan: float):
        self.client = PyJWKClient(url, cache_jwk_set=True, lifespan=lifespan, timeout=JWKS_FETCH_TIMEOUT_SECONDS)
        self.keys: dict[str, PyJWK] = {}
        self.refetched_at = float("-inf")
        self.lock = threading.Lock()

    def _fetch(self, refresh: bool) -> dict[str, PyJWK]:
        try:
            self.keys = _index(self.client.get_jwk_set(refresh=refresh))
        except jwt.PyJWTError as exc:
            log.warning("SHOP_JWKS %s: %s; using the last keys fetched", self.client.uri, exc)
        return self.keys

    def key(self, kid: str) -> PyJWK | None:
        with self.lock:
            found = self._fetch(False).get(kid)
            if found is None and time.monotonic() - self.refetched_at >= UNKNOWN_KID_REFETCH_SECONDS:
                self.refetched_at = time.monotonic()
                found = self._fetch(True).get(kid)
            return found


_sources: dict[tuple, _FileKeys | _UrlKeys] = {}
_sources_lock = threading.Lock()


def _jwks(source: str) -> _FileKeys | _UrlKeys:
    """The one cache of this process for the SHOP_JWKS value `source`."""
    is_url = source.lower().startswith(("http://", "https://"))
    lifespan = env_float("SHOP_JWKS_CACHE_SECONDS") if is_url else 0.0
    with _sources_lock:
        found = _sources.get((source, lifespan))
        if found is None:
            found = _sources[(source, lifespan)] = _UrlKeys(source, lifespan) if is_url else _FileKeys(source)
        return found
