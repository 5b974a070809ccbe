"""Who a username is: ws-gateway owns users, so other services ask it.

One staff-only lookup (GET /api/auth/users/?username=) made with a short-lived
service token; services keep no copy of the user table.
"""

from __future__ import annotations

import httpx

from switchboard import tokens
from switchboard.routes import internal_url


def lookup_user(username: str, caller: str) -> dict | None:
    """{"id", "username", "is_staff"} of `username`, or None if there is no such user.
    Raises httpx.HTTPError when ws-gateway cannot answer; `caller` names the service."""
    res = httpx.get(
        internal_url("/api/auth/users/"),
        params={"username": username},
        headers={"Authorization": f"Bearer {tokens.service_token(caller)}"},
        timeout=5,
    )
    if res.status_code == 404:
        return None
    res.raise_for_status()
    return res.json()
