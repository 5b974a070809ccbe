"""The notification service's REST API (behind nginx's /api/notifications/).

GET  /api/notifications/?unread=1&limit=&offset=   the caller's own, newest first
POST /api/notifications/ {"user", "title", "message", "url"}   staff: 201, pushed to
     every open tab of that user
POST /api/notifications/<id>/read/                 the caller's own only (404 otherwise)
POST /api/notifications/read-all/
POST /api/notifications/send/ {"sub" | "user_id", "name"?, "title", "message"?, "url"?}
     the server API (API key, scope notify; optional Idempotency-Key): 201, stored,
     counted in unread and pushed to every tab; a retry with the same key stores nothing
     and gets the same 201 body (409 if the key was used for another notification)

Every read and mark is scoped to the token's user id: there is no parameter naming
another user except the staff create.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from pydantic import BaseModel, ConfigDict, Field

from notification import store
from switchboard import dbthread, metrics, publish, serverapi, users
from switchboard.http import api, json_error, json_response
from switchboard.text import Link

log = logging.getLogger(__name__)


class NewNotification(BaseModel):
    user: str = Field(min_length=1, max_length=150)
    title: str = Field(min_length=1, max_length=200)
    message: str = Field(default="", max_length=4000)
    # Shown as a link by the bell: http(s) or a path on this site, never javascript:.
    url: Link = Field(default="", max_length=500)


class SendNotification(serverapi.UserRef):
    title: str = Field(min_length=1, max_length=200)
    message: str = Field(default="", max_length=4000)
    url: Link = Field(default="", max_length=500)


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    unread: bool = False
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=10**9)


async def resolve_user(username: str) -> int | None:
    """The id of `username`, asked of ws-gateway (switchboard.users) from the event loop."""
    user = await users.lookup_user_async(username, "notification")
    return None if user is None else int(user["id"])


def _store_counted(user_id: int, data: NewNotification) -> tuple[dict, int]:
    """Store it (committed before anyone is told), then the user's unread count: one
    hand-off to a database thread (switchboard.dbthread) for both."""
    n = store.create(user_id, data.title, data.message, data.url)
    return n, store.unread_count(user_id)


def _page(user_id: int, query: PageQuery) -> dict:
    items, total = store.page(user_id, query.unread, query.limit, query.offset)
    return {
        "notifications": items,
        "count": total,
        "unread_count": store.unread_count(user_id),
        "limit": query.limit,
        "offset": query.offset,
    }


def _push_count(user_id: int) -> None:
    publish.send_to_group_sync(store.group(user_id), store.count_frame(store.unread_count(user_id)))


async def _create_and_push(user_id: int, data: NewNotification) -> dict:
    n, count = await dbthread.run(_store_counted, user_id, data)
    metrics.NOTIFICATIONS_CREATED.labels("rest").inc()
    await _push_stored_async(user_id, n, count)
    return n


async def _push_stored_async(user_id: int, n: dict, count: int) -> None:
    """_push_stored from the event loop, with the count already read."""
    try:
        await publish.send_all_to_group(store.group(user_id), [store.notification_frame(n), store.count_frame(count)])
    except Exception:
        log.warning("notification %s stored, live push failed", n["id"], exc_info=True)


def _push_stored(user_id: int, n: dict) -> None:
    # Stored first: a push that fails still leaves the notification and the count
    # for the next connect. So the answer is 201 either way: an error here would
    # make the caller retry and store it twice (seen in the fault campaign's Redis
    # restart, where the push fails and the tabs read the unread list on reconnect).
    # Both frames in one hand-off to the event loop, the notification first: a tab shows
    # it, then the count that includes it.
    try:
        frames = [store.notification_frame(n), store.count_frame(store.unread_count(user_id))]
        publish.send_all_to_group_sync(store.group(user_id), frames)
    except Exception:
        log.warning("notification %s stored, live push failed", n["id"], exc_info=True)


@api(
    ["GET", "POST"],
    body=NewNotification,
    query=PageQuery,
    staff=["POST"],
    responses={
        "GET": {200: "the caller's notifications, newest first"},
        "POST": {201: "created and pushed", 502: "the user directory did not answer"},
    },
)
async def notifications(request, data: NewNotification | None = None, query: PageQuery | None = None):
    # Async (issue 21): the staff POST is the hot path of every notification. On the loop,
    # the user lookup and both pushes cost no worker thread and no hand-off back to the
    # loop (a sync view took three round trips and a thread waiting on ws-gateway); the
    # database is one hand-off to a thread that keeps its connection (switchboard.dbthread),
    # and the push still follows the commit.
    me = request.identity
    if request.method == "POST":
        try:
            user_id = await resolve_user(data.user)
        except httpx.HTTPError as exc:
            return json_error(502, "upstream_error", f"could not look up the user: {exc}")
        if user_id is None:
            return json_error(400, "unknown_user", f"no user {data.user!r}")
        # Shielded: a caller that hangs up (Django cancels the view) after the row is
        # stored still has it pushed, as the sync view's thread did.
        n = await asyncio.shield(_create_and_push(user_id, data))
        return json_response({**n, "user_id": user_id}, status=201)
    return json_response(await dbthread.run(_page, me.id, query))


@api(["POST"], responses={"POST": {200: "marked read; the new unread count"}})
def read_one(request, notification_id: int):
    if not store.mark_read(request.identity.id, notification_id):
        return json_error(404, "not_found", "no such notification")
    _push_count(request.identity.id)
    return json_response({"unread_count": store.unread_count(request.identity.id)})


@api(["POST"], responses={"POST": {200: "all marked read"}})
def read_all(request):
    store.mark_all_read(request.identity.id)
    _push_count(request.identity.id)
    return json_response({"unread_count": 0})


@api(
    ["POST"],
    key_scope="notify",
    body=SendNotification,
    responses={
        "POST": {
            201: "stored and pushed (or, for a repeated Idempotency-Key, the one stored first)",
            409: "this Idempotency-Key was used for a different notification of this user",
            502: "the user directory did not answer",
        }
    },
)
def send(request, data: SendNotification):
    """Notify a user from the shop's back end (the seed's send_user_notification)."""
    try:
        key = serverapi.idempotency_key(request)
    except ValueError as exc:
        return json_error(400, "invalid_header", str(exc))
    user_id = users.local_user_id(data, "notification")  # 502 when ws-gateway cannot answer (@api)
    if key is None:
        n, created = store.create(user_id, data.title, data.message, data.url), True
    else:
        n, created = store.create_once(user_id, data.title, data.message, data.url, key)
    if not created:
        if (n["title"], n["message"], n["url"]) != (data.title[:200], data.message, data.url[:500]):
            # A key reused for another notification is a client bug; answering with the
            # first one would hide it.
            return json_error(409, "idempotency_key_reused", "this Idempotency-Key was used for another notification")
        # The first request pushed it; pushing again would show it twice.
        return json_response({**n, "user_id": user_id}, status=201)
    metrics.NOTIFICATIONS_CREATED.labels("server_api").inc()
    _push_stored(user_id, n)
    return json_response({**n, "user_id": user_id}, status=201)
