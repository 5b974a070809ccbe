"""Chat's REST API.

GET  /api/chat/rooms/                              rooms, with their last seq
POST /api/chat/rooms/ {"name", "slug"?, "description"?}   201 | 400 | 409
GET  /api/chat/rooms/<slug>/messages/?before=<seq>&after=<seq>&limit=<n>
     a page of history, oldest first, with has_more (404 for an unknown room)
POST /api/chat/rooms/<slug>/system-messages/ {"message", "user"?}  the server API (API
     key, scope chat; optional Idempotency-Key): stored by the room's inbox worker with
     the room's next seq and broadcast like any message -> 201 the stored message
"""

from __future__ import annotations

import uuid

import orjson
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils.text import slugify
from pydantic import BaseModel, ConfigDict, Field

from chat.models import ChatRoom
from chat.store import get_room, page
from switchboard import redisconn, serverapi
from switchboard.http import api, json_error, json_response
from switchboard.protocol import INBOX_COMMANDS, ChatSystem
from switchboard.routes import shard_channel

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


# How long a system message may wait for the room's worker to store it: past it, 504
# (not stored yet, or stored and not acknowledged: retry with the same Idempotency-Key).
SYSTEM_ACK_SECONDS = 10
REPLY_PREFIX = "sb:chat-system-reply:"


_replies = None


def _reply_client():
    # Its read timeout outlasts the BLPOP's wait (the key check's client gives up in 2 s).
    global _replies
    if _replies is None:
        _replies = redisconn.sync_client(socket_timeout=SYSTEM_ACK_SECONDS + 5, socket_connect_timeout=2)
    return _replies


class SystemMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=4000)
    user: str = Field(default="system", min_length=1, max_length=150, description="the name it is shown under")


@api(
    ["POST"],
    key_scope="chat",
    body=SystemMessage,
    responses={
        "POST": {
            201: "stored with the room's seq and broadcast (a repeated Idempotency-Key: the one stored first)",
            404: "no such room",
            504: "the room's worker did not acknowledge in time: retry with the same Idempotency-Key",
        }
    },
)
def system_messages(request, slug: str, data: SystemMessage):
    """Post a system message to a room from the shop's back end."""
    try:
        key = serverapi.idempotency_key(request)
    except ValueError as exc:
        return json_error(400, "invalid_header", str(exc))
    if get_room(slug) is None:
        return json_error(404, "not_found", "no such room")
    reply_to = REPLY_PREFIX + uuid.uuid4().hex
    command: ChatSystem = {
        "type": "chat.system",
        "room": slug,
        "message": data.message,
        "user": data.user,
        # Stored once per client_id: the shop's key, else one of ours, so a new shard
        # owner redoing this command after a handover does not store it twice.
        "client_id": key or uuid.uuid4().hex,
        "reply_to": reply_to,
    }
    # Through the room's inbox shard, like the room's other messages, so its seq is
    # taken in the one order every member sees.
    channel = shard_channel(INBOX_COMMANDS["chat.system"], slug)
    async_to_sync(get_channel_layer("inbox").send)(channel, command)
    answer = _reply_client().blpop([reply_to], timeout=SYSTEM_ACK_SECONDS)
    if answer is None:
        return json_error(
            504, "not_acknowledged", "the room's worker did not store it in time; retry with the same Idempotency-Key"
        )
    reply = orjson.loads(answer[1])
    if not reply["ok"]:
        return json_error(404, "not_found", "no such room")
    return json_response({"room": slug, **reply["message"]}, status=201)
