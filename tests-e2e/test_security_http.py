"""Issue 16, the HTTP side, from outside through nginx: tokens are signed with keys of
their own, a report reads with its requester's rights, stored text is checked, pages
carry the browser's protections."""

from __future__ import annotations

import time

import httpx
import jwt


def auth(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


def test_a_token_signed_with_djangos_secret_key_is_refused(fleet, tokens):
    """Django's SECRET_KEY (sessions, CSRF) must not mint access tokens: whoever learns it
    (a debug page, a settings dump) would otherwise be any user, staff included."""
    claims = jwt.decode(tokens["alice"], options={"verify_signature": False})
    claims.update(sub="1", name="admin", staff=True, exp=int(time.time()) + 600)
    header = jwt.get_unverified_header(tokens["alice"])
    secret = fleet.setting("SWITCHBOARD_SECRET_KEY")
    for headers in ({k: v for k, v in header.items() if k == "kid"} or None, None):
        forged = jwt.encode(claims, secret, algorithm="HS256", headers=headers)
        res = httpx.get(f"{fleet.url}/api/auth/me/", headers=auth(forged))
        assert res.status_code == 401, res.text
    # The fleet's own token still works.
    assert httpx.get(f"{fleet.url}/api/auth/me/", headers=auth(tokens["alice"])).status_code == 200
