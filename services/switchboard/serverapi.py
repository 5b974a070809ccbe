"""What the server API's endpoints share (the shop's back end, by API key; docs/server-api.md):
naming a user by the shop's id or the local one, and the Idempotency-Key header.

A user is named by exactly one of `sub` (the shop's user id, mapped to a local user by
ws-gateway, made on first sight: switchboard/users.resolve_subject) or `user_id` (the
local id, as tokens and frames carry it); `users.local_user_id(ref, caller)` gives the
local id of either.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, model_validator

IDEMPOTENCY_KEY_MAX = 64
_KEY_RE = re.compile(r"^[\x21-\x7e]{1,64}$")  # printable ASCII, no space: what clients send


class UserRef(BaseModel):
    """A body naming one user: `sub` (with an optional `name` for a user never seen) or `user_id`."""

    model_config = ConfigDict(extra="forbid")
    sub: str | None = Field(default=None, min_length=1, max_length=255)
    name: str | None = Field(default=None, min_length=1, max_length=150)
    user_id: int | None = Field(default=None, ge=1, le=2**53)

    @model_validator(mode="after")
    def one_user(self):
        if (self.sub is None) == (self.user_id is None):
            raise ValueError("name the user by exactly one of sub (the shop's id) or user_id (the local id)")
        if self.name is not None and self.sub is None:
            raise ValueError("name goes with sub (it names a shop user seen for the first time)")
        return self


def idempotency_key(request) -> str | None:
    """The request's Idempotency-Key, or None; ValueError for one no client should send."""
    key = request.headers.get("Idempotency-Key")
    if key is None or key == "":
        return None
    if not _KEY_RE.match(key):
        raise ValueError(f"Idempotency-Key must be 1..{IDEMPOTENCY_KEY_MAX} printable ASCII characters, no spaces")
    return key
