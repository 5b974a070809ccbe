"""Making, revoking and listing the shop's API keys: the one writer of ApiKey rows and
of their index in Redis (switchboard/apikeys.py), for the management command and the
staff REST endpoint alike.

Each change writes the row and the index entry in one transaction: the Redis write is
the transaction's last step, so when Redis is away the row rolls back and the caller
sees the failure (a key that services cannot check is never shown; a revoke that
services would not see is never reported done). A revoke overwrites the entry with
`revoked: true` rather than deleting it, so a key revoked is refused as revoked.
`sync()` rewrites the whole index from the rows, for a Redis that lost its data.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from switchboard import apikeys
from ws_gateway.models import ApiKey

MAX_NAME = 100


def _record(row: ApiKey) -> apikeys.KeyRecord:
    return apikeys.KeyRecord(row.key_id, row.name, tuple(row.scopes), row.revoked_at is not None)


def validate_scopes(scopes: Iterable[str]) -> list[str]:
    wanted = sorted(set(scopes))
    unknown = [s for s in wanted if s not in apikeys.SCOPES]
    if unknown or not wanted:
        raise ValueError(f"scopes must be some of {', '.join(apikeys.SCOPES)}; got {', '.join(unknown) or 'none'}")
    return wanted


def create(name: str, scopes: Iterable[str], created_by: str = "") -> tuple[ApiKey, str]:
    """(the row, the key): the key is returned here once and stored nowhere."""
    name = " ".join(name.split())[:MAX_NAME]
    if not name:
        raise ValueError("a key needs a name (what uses it)")
    wanted = validate_scopes(scopes)
    key_id, key = apikeys.new_key()
    with transaction.atomic():
        row = ApiKey.objects.create(
            key_id=key_id, key_hash=apikeys.digest(key), name=name, scopes=wanted, created_by=created_by[:150]
        )
        apikeys.publish_record(row.key_hash, _record(row))
    return row, key


def revoke(key_id: str) -> ApiKey | None:
    """Revoke a key (again is a no-op that rewrites the index); None for no such key."""
    with transaction.atomic():
        row = ApiKey.objects.select_for_update().filter(key_id=key_id).first()
        if row is None:
            return None
        if row.revoked_at is None:
            row.revoked_at = timezone.now()
            row.save(update_fields=["revoked_at"])
        apikeys.publish_record(row.key_hash, _record(row))
    return row


def listing() -> list[ApiKey]:
    return list(ApiKey.objects.all())


def sync() -> int:
    """Rewrite every key's index entry from the rows (a Redis restored empty); the count."""
    rows = listing()
    for row in rows:
        apikeys.publish_record(row.key_hash, _record(row))
    return len(rows)
