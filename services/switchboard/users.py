"""Who a username or a shop user is: ws-gateway owns users, so other services ask it.

A staff-only lookup (GET /api/auth/users/?username=) and the shop subjects' mapping
(POST /api/auth/subjects/, service tokens only), made with a short-lived service token;
services keep no copy of the user table (the directory on Redis, below, is ws-gateway's).

A shop token brought to another service's REST API (shop_identity) is shown to
ws-gateway's GET /api/auth/me/ as it came: ws-gateway verifies it again and maps its
subject, renaming the user as the token says, exactly as on a socket. The answer is
kept per token for at most SHOP_IDENTITY_CACHE_SECONDS (60 s, and never past its exp), so a
client's requests cost one call per token and minute, not one each.

Every call goes through one httpx.Client per process (`_client()`), kept alive: a bare
`httpx.get` builds a Client each time, and building one loads the CA bundle into a new
SSL context (20-35 ms on the 2-core bench machine, even for an http:// URL) and opens
a new TCP connection. That was most of a staff `POST /api/notifications/` (issue 21).
An async view asks through its event loop's one switchboard.internalhttp.Client
(lookup_user_async): httpx's async transport cost more CPU than the rest of the view.

A username lookup reads the user directory on Redis first (switchboard.userdir, kept by
ws-gateway around every user write): one HGET instead of a REST call. Only a name the
directory does not settle (missing, marked mid-write, Redis away) is asked of
ws-gateway; the directory's protocol is what makes its answers exact across renames.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import weakref

import httpx

from switchboard import internalhttp, tokens, userdir
from switchboard.routes import internal_url

SHOP_IDENTITY_CACHE_SECONDS = 60.0
SHOP_IDENTITY_CACHE_SIZE = 10_000
_shop_cache: dict[bytes, tuple[float, tokens.Identity | None]] = {}
_shop_cache_lock = threading.Lock()
_http: httpx.Client | None = None
_http_lock = threading.Lock()
_async_http: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, internalhttp.Client] = weakref.WeakKeyDictionary()


def _client() -> httpx.Client:
    """The process's one client to ws-gateway (httpx.Client is thread-safe: the sync
    views of one daphne share it across its thread pool)."""
    global _http
    if _http is None:
        with _http_lock:
            if _http is None:
                _http = httpx.Client(timeout=5)
    return _http


def _async_client() -> internalhttp.Client:
    """The event loop's one async client to ws-gateway (its connections belong to the loop
    that made them: daphne has one for its life, a test a new one each)."""
    loop = asyncio.get_running_loop()
    client = _async_http.get(loop)
    if client is None:
        client = _async_http[loop] = internalhttp.Client()
    return client


def _lookup_answer(res: httpx.Response) -> dict | None:
    if res.status_code == 404:
        return None
    res.raise_for_status()
    return res.json()


def _directory_answer(found: userdir.Entry | str, username: str) -> dict | None:
    """What the directory settled: the user, or None for a name nobody holds (FREE)."""
    return None if found == userdir.FREE else found.answer(username)


async def lookup_user_async(username: str, caller: str) -> dict | None:
    """lookup_user from the event loop (an async view): no worker thread waits on ws-gateway."""
    found = await userdir.lookup_async(username)
    if found is not None:
        return _directory_answer(found, username)
    res = await _async_client().get(
        internal_url("/api/auth/users/"),
        params={"username": username},
        headers={"Authorization": f"Bearer {tokens.service_token(caller)}"},
        timeout=5,
    )
    return _lookup_answer(res)


def lookup_user(username: str, caller: str) -> dict | None:
    """{"id", "username", "is_staff"} of `username`, or None if there is no such user.
    Raises httpx.HTTPError when ws-gateway cannot answer; `caller` names the service."""
    found = userdir.lookup(username)
    if found is not None:
        return _directory_answer(found, username)
    res = _client().get(
        internal_url("/api/auth/users/"),
        params={"username": username},
        headers={"Authorization": f"Bearer {tokens.service_token(caller)}"},
        timeout=5,
    )
    return _lookup_answer(res)


def resolve_subject(sub: str, caller: str, name: str | None = None) -> dict:
    """{"id", "username", "is_staff"} of the local user of shop subject `sub` (the shop's
    user id, a shop token's `sub`), made when the subject was never seen (a shop may
    notify a user before their first connect); `name` names only such a new user.
    Raises httpx.HTTPError when ws-gateway cannot answer (or refuses: a bad `sub`)."""
    body = {"sub": sub} if name is None else {"sub": sub, "name": name}
    res = _client().post(
        internal_url("/api/auth/subjects/"),
        json=body,
        headers={"Authorization": f"Bearer {tokens.service_token(caller)}"},
        timeout=5,
    )
    res.raise_for_status()
    return res.json()


class DirectoryUnavailable(Exception):
    """ws-gateway's user directory did not answer (or refused the call): switchboard.http's
    @api answers 502 upstream_error, so a view that resolves a user need not."""


def local_user_id(ref, caller: str) -> int:
    """The local id of the user a server API body names (serverapi.UserRef: `user_id`,
    the local id, as is; or the shop's `sub`, mapped by ws-gateway and made on first
    sight, `name` naming such a new user). DirectoryUnavailable when ws-gateway cannot
    answer; `caller` names the service."""
    if ref.user_id is not None:
        return ref.user_id
    try:
        return int(resolve_subject(ref.sub, caller, name=ref.name)["id"])
    except httpx.HTTPError as exc:
        raise DirectoryUnavailable(f"could not resolve the user: {exc}") from exc


def shop_identity(claims, token: str) -> tokens.Identity | None:
    """The local identity of a shop token this service has verified (`claims`, a
    shoptokens.ShopClaims), as ws-gateway maps it; None if ws-gateway refuses the token
    (its settings differ). Raises tokens.AuthUnavailable when ws-gateway cannot answer."""
    key = hashlib.sha256(token.encode()).digest()  # the cache holds no token
    now = time.time()
    with _shop_cache_lock:
        hit = _shop_cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    try:
        res = _client().get(internal_url("/api/auth/me/"), headers={"Authorization": f"Bearer {token}"}, timeout=5)
    except httpx.HTTPError as exc:
        raise tokens.AuthUnavailable(f"ws-gateway did not answer: {type(exc).__name__}") from None
    if res.status_code == 401:
        identity = None
    elif res.status_code == 200:
        identity = tokens.Identity.from_dict(res.json())
    else:
        raise tokens.AuthUnavailable(f"ws-gateway answered {res.status_code}")
    with _shop_cache_lock:
        if len(_shop_cache) >= SHOP_IDENTITY_CACHE_SIZE:
            for stale in [k for k, (until, _) in _shop_cache.items() if until <= now] or list(_shop_cache)[:1000]:
                _shop_cache.pop(stale, None)
        _shop_cache[key] = (min(claims.exp, now + SHOP_IDENTITY_CACHE_SECONDS), identity)
    return identity
