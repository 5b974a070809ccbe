"""Chat's REST API.

GET  /api/chat/rooms/                              rooms, with their last seq
POST /api/chat/rooms/ {"name", "slug"?, "description"?}   201 | 400 | 409
GET  /api/chat/rooms/<slug>/messages/?before=<seq>&after=<seq>&limit=<n>
     a page of history, oldest first, with has_more (404 for an unknown room)
"""

from __future__ import annotations

from django.utils.text import slugify
from pydantic import BaseModel, ConfigDict, Field

from chat.models import ChatRoom
from chat.store import get_room, page
from switchboard.http import api, json_error, json_response

MAX_PAGE = 200


class NewRoom(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    slug: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = Field(default="", max_length=2000)


class MessagesQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    before: int | None = Field(default=None, ge=1, le=2**62)
    after: int | None = Field(default=None, ge=0, le=2**62)
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)


def _room(room: ChatRoom) -> dict:
    return {"slug": room.slug, "name": room.name, "description": room.description, "last_seq": room.last_seq}


@api(
    ["GET", "POST"],
    body=NewRoom,
    responses={
        "GET": {200: "every room, with its last seq"},
        "POST": {201: "the new room", 409: "a room with this name or slug exists"},
    },
)
def rooms(request, data: NewRoom | None = None):
    if request.method == "GET":
        return json_response({"rooms": [_room(r) for r in ChatRoom.objects.order_by("name")]})
    slug = data.slug or slugify(data.name)[:64]
    if not slug:
        return json_error(400, "invalid_body", "name must contain letters or digits, or give a slug")
    if ChatRoom.objects.filter(slug=slug).exists() or ChatRoom.objects.filter(name=data.name).exists():
        return json_error(409, "exists", f"a room named {data.name!r} or with slug {slug!r} exists")
    room = ChatRoom.objects.create(name=data.name, slug=slug, description=data.description)
    return json_response(_room(room), status=201)


@api(["GET"], query=MessagesQuery, responses={"GET": {200: "a page of history, oldest first"}})
def messages(request, slug: str, query: MessagesQuery):
    room = get_room(slug)
    if room is None:
        return json_error(404, "not_found", f"no room {slug!r}")
    items, has_more = page(room, query.before, query.after, query.limit)
    return json_response({"room": room.slug, "messages": items, "has_more": has_more})
