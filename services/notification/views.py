"""Notification's REST API; every endpoint sees only the caller's notifications.

GET  /api/notifications/?unread=1&before=<id>&limit=<n>  newest first, with has_more
POST /api/notifications/<id>/read/     -> {"unread_count"} (404 if not yours)
POST /api/notifications/read-all/      -> {"unread_count": 0}
POST /api/notifications/  staff: {"user": <username>, "title", "message", "url"?} -> 201,
     stored, then pushed to every open tab of that user.
"""

from __future__ import annotations

import httpx
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from pydantic import BaseModel, Field

from notification import store
from notification.inbox import user_group
from switchboard import publish, tokens
from switchboard.config import env
from switchboard.http import api, int_param, json_error, json_response
from switchboard.protocol import frame
from switchboard.routes import shard_channel

MAX_PAGE = 100


class NewNotification(BaseModel):
    user: str = Field(min_length=1, max_length=150)
    title: str = Field(min_length=1, max_length=200)
    message: str = Field(min_length=1, max_length=5000)
    url: str = Field(default="", max_length=500)


def lookup_user_id(username: str) -> int | None:
    """Users belong to ws-gateway: ask it (as a service) rather than keep a copy."""
    res = httpx.get(
        f"{env('GATEWAY_URL')}/api/auth/users/",
        params={"username": username},
        headers={"Authorization": f"Bearer {tokens.service_token('notification')}"},
        timeout=5,
    )
    if res.status_code == 404:
        return None
    res.raise_for_status()
    return int(res.json()["id"])


def _push_count(user_id: int) -> None:
    publish.send_to_group_sync(user_group(user_id), frame("unread_count", count=store.unread_count(user_id)))


@api(["GET", "POST"], body=NewNotification)
def notifications(request, data: NewNotification | None = None):
    if request.method == "GET":
        try:
            before = int_param(request, "before", None, 1, 2**62)
            limit = int_param(request, "limit", 20, 1, MAX_PAGE)
        except ValueError as exc:
            return json_error(400, "invalid_parameter", str(exc))
        unread = request.GET.get("unread") in ("1", "true")
        items, has_more = store.page(request.identity.id, unread, before, limit)
        return json_response(
            {"notifications": items, "has_more": has_more, "unread_count": store.unread_count(request.identity.id)}
        )
    if not request.identity.is_staff:
        return json_error(403, "forbidden", "only staff may send notifications")
    try:
        user_id = lookup_user_id(data.user)
    except httpx.HTTPError:
        return json_error(503, "unavailable", "could not reach ws-gateway to look the user up")
    if user_id is None:
        return json_error(400, "unknown_user", f"no user {data.user!r}")
    note = store.create(user_id, data.title, data.message, data.url)
    # Stored: now push through the user's inbox shard, in order with their other changes.
    async_to_sync(get_channel_layer("inbox").send)(
        shard_channel("notification", str(user_id)), {"type": "notify.push", "user_id": user_id, "id": note.pk}
    )
    return json_response(note.as_frame_fields(), status=201)


@api(["POST"])
def read_one(request, notification_id: int):
    if not store.mark_read(request.identity.id, notification_id):
        return json_error(404, "not_found", "no such notification")
    _push_count(request.identity.id)
    return json_response({"unread_count": store.unread_count(request.identity.id)})


@api(["POST"])
def read_all(request):
    store.mark_all_read(request.identity.id)
    _push_count(request.identity.id)
    return json_response({"unread_count": 0})
