"""API keys of the shop's back end: their format, their index in Redis, and checking one.

A key is `sbk_<key id>_<secret>`: the key id (16 hex characters) names the key in
lists, logs and the revoke command; the secret is 32 random bytes. ws-gateway stores
only the key's sha256 (ws_gateway/models.py ApiKey) and shows the key once, when it is
made. It also writes the index every service checks a key against: one Redis string
per key, `sb:apikey:<sha256 hex>` -> {"id", "name", "scopes", "revoked"}, written in the
same code path as the row (ws_gateway/apikeystore.py: a failed Redis write rolls the
row back), so a key revoked is refused by every service at its next request.

Services never read ws-gateway's database: `check(header, scope)` hashes the bearer
key, reads its record, and spends one token of the key's rate limit (a Redis token
bucket per key id, ratelimit.py's script, API_KEY_RATE_PER_SECOND / _BURST).
`switchboard.http.api(key_scope=...)` calls it and answers 401/403/429/503.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import orjson
from redis.exceptions import RedisError

from switchboard import redisconn
from switchboard.config import env_float
from switchboard.ratelimit import SyncRedisTokenBucket

PREFIX = "sbk_"
INDEX = "sb:apikey:"
RATE_PREFIX = "sb:apikey-rate:"
# What a key may do; a view names the one it needs (@api(key_scope=...)).
SCOPES = ("notify", "dashboard", "chat", "tasks")
KEY_RE = re.compile(r"^sbk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What a service knows of a key: enough to authorize, nothing to forge one."""

    id: str
    name: str
    scopes: tuple[str, ...]
    revoked: bool = False

    def as_json(self) -> bytes:
        return orjson.dumps({"id": self.id, "name": self.name, "scopes": list(self.scopes), "revoked": self.revoked})

    @classmethod
    def from_json(cls, raw: bytes) -> KeyRecord:
        data = orjson.loads(raw)
        return cls(str(data["id"]), str(data["name"]), tuple(data["scopes"]), bool(data.get("revoked")))


def new_key() -> tuple[str, str]:
    """(key id, the whole key): shown once, never stored."""
    key_id = secrets.token_hex(8)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def digest(key: str) -> str:
    """The sha256 of the key, hex: what is stored and what the index is keyed by. A key
    holds 256 random bits, so a plain hash is enough (no slow KDF: nothing to guess)."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    m = KEY_RE.match(key)
    return m.group(1) if m else None


# --------------------------------------------------------------------- Redis ----
_client = None


def client():
    """This process's blocking client of the main Redis, with short timeouts: a request
    waiting on a dead Redis gets a 503 in seconds, not a hang."""
    global _client
    if _client is None:
        _client = redisconn.sync_client(socket_timeout=2, socket_connect_timeout=2)
    return _client


def reset() -> None:
    """Forget the client (tests point REDIS_URL at their own server)."""
    global _client
    _client = None


def publish_record(key_hash: str, record: KeyRecord) -> None:
    """Write (or overwrite) the index entry of a key; raises RedisError when Redis is away."""
    client().set(INDEX + key_hash, record.as_json())


def lookup(key: str) -> KeyRecord | None:
    """The record of `key` as the index has it; None for no such key. RedisError when away."""
    if key_id_of(key) is None:
        return None
    raw = client().get(INDEX + digest(key))
    if raw is None:
        return None
    record = KeyRecord.from_json(raw)
    # The index is keyed by the hash; the id in the key must be the record's too.
    return record if hmac.compare_digest(record.id, key_id_of(key)) else None


class KeyRefused(Exception):
    """Why a request's key is not accepted: an HTTP status, a code and a message."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def bearer_key(header: str) -> str | None:
    if header[:7].lower() == "bearer ":
        value = header[7:].strip()
        return value if value.startswith(PREFIX) else None
    return None


def check(authorization: str, scope: str) -> KeyRecord:
    """The record of the request's key if it may use `scope` now; KeyRefused otherwise."""
    key = bearer_key(authorization)
    if key is None:
        raise KeyRefused(401, "unauthorized", "send an API key: Authorization: Bearer sbk_...")
    try:
        record = lookup(key)
        if record is None or record.revoked:
            raise KeyRefused(401, "invalid_api_key", "this API key is unknown or revoked")
        if scope not in record.scopes:
            raise KeyRefused(403, "forbidden", f"this API key has no {scope!r} scope")
        bucket = SyncRedisTokenBucket(
            client(), env_float("API_KEY_RATE_PER_SECOND"), env_float("API_KEY_RATE_BURST"), RATE_PREFIX
        )
        decision = bucket.take(record.id)
    except (RedisError, OSError) as exc:
        raise KeyRefused(503, "key_store_unavailable", "the API key store is unreachable; retry") from exc
    if not decision.allowed:
        raise KeyRefused(429, "rate_limited", "this API key's rate limit is spent", decision.retry_after)
    return record
