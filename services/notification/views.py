"""The notification service's REST API (behind nginx's /api/notifications/).

GET  /api/notifications/?unread=1&limit=&offset=   the caller's own, newest first
POST /api/notifications/ {"user", "title", "message", "url"}   staff: 201, pushed to
     every open tab of that user
POST /api/notifications/<id>/read/                 the caller's own only (404 otherwise)
POST /api/notifications/read-all/

Every read and mark is scoped to the token's user id: there is no parameter naming
another user except the staff create.
"""

from __future__ import annotations

import logging

import httpx
from pydantic import BaseModel, ConfigDict, Field

from notification import store
from switchboard import metrics, publish, users
from switchboard.http import api, json_error, json_response
from switchboard.text import Link

log = logging.getLogger(__name__)


class NewNotification(BaseModel):
    user: str = Field(min_length=1, max_length=150)
    title: str = Field(min_length=1, max_length=200)
    message: str = Field(default="", max_length=4000)
    # Shown as a link by the bell: http(s) or a path on this site, never javascript:.
    url: Link = Field(default="", max_length=500)


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    unread: bool = False
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=10**9)


def resolve_user(username: str) -> int | None:
    """The id of `username`, asked of ws-gateway (switchboard.users)."""
    user = users.lookup_user(username, "notification")
    return None if user is None else int(user["id"])


def _push_count(user_id: int) -> None:
    publish.send_to_group_sync(store.group(user_id), store.count_frame(store.unread_count(user_id)))


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
def notifications(request, data: NewNotification | None = None, query: PageQuery | None = None):
    me = request.identity
    if request.method == "POST":
        try:
            user_id = resolve_user(data.user)
        except httpx.HTTPError as exc:
            return json_error(502, "upstream_error", f"could not look up the user: {exc}")
        if user_id is None:
            return json_error(400, "unknown_user", f"no user {data.user!r}")
        n = store.create(user_id, data.title, data.message, data.url)
        metrics.NOTIFICATIONS_CREATED.labels("rest").inc()
        # Stored first: a push that fails still leaves the notification and the count
        # for the next connect. So the answer is 201 either way: an error here would
        # make the caller retry and store it twice (seen in the fault campaign's Redis
        # restart, where the push fails and the tabs read the unread list on reconnect).
        try:
            publish.send_to_group_sync(store.group(user_id), store.notification_frame(n))
            _push_count(user_id)
        except Exception:
            log.warning("notification %s stored, live push failed", n["id"], exc_info=True)
        return json_response({**n, "user_id": user_id}, status=201)
    limit, offset = query.limit, query.offset
    items, total = store.page(me.id, query.unread, limit, offset)
    return json_response(
        {
            "notifications": items,
            "count": total,
            "unread_count": store.unread_count(me.id),
            "limit": limit,
            "offset": offset,
        }
    )


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
