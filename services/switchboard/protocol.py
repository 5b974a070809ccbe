"""Every message type of Switchboard, in one file, with a banner per service.

Two kinds live here:

* client frames (JSON over the WebSocket), as pydantic models. ws-gateway validates
  each incoming frame once, at the edge, against its route's models; services receive
  the validated dict and trust it. Server frames are built with `frame()` from the
  same vocabulary and encoded once per broadcast.
* the gateway protocol on the channel layer (gw.*), as TypedDicts: what ws-gateway and
  the services say to each other.

The frame shapes are the seed document's, so a client written against it works.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, NotRequired, TypedDict

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError


class ClientFrame(BaseModel):
    # Unknown keys are ignored rather than refused: old clients keep working when a
    # frame grows, and nothing unvalidated is forwarded (model_dump drops them).
    model_config = ConfigDict(extra="ignore", strict=True)


ClientId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


# ----------------------------------------------------------------- every route ----
class Ping(ClientFrame):
    """Answered by ws-gateway with {"type": "pong"}; never reaches a service."""

    type: Literal["ping"]


# ------------------------------------------------------------------------ chat ----
class ChatMessage(ClientFrame):
    """A message to the room. Echoed to everyone, the sender included, with `seq`:
    that echo is the acknowledgement. A resend with the same client_id is stored once."""

    type: Literal["chat_message"]
    message: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    client_id: ClientId | None = None


class Typing(ClientFrame):
    """The user is typing; others get user_typing, throttled, never the sender."""

    type: Literal["typing"]


# ---------------------------------------------------------------------- collab ----
# The seed's JSON protocol for simple clients (?protocol=json). Positions count UTF-16
# code units, as JavaScript strings and Yjs do, so a browser's selectionStart is a
# position as is. Yjs clients speak the binary sync+awareness protocol instead.
CollabPosition = Annotated[int, Field(ge=0, le=10_000_000)]


class CollabEdit(ClientFrame):
    """Insert `text` at `position`, or delete `length` units there (default len(text),
    the seed's shape). Applied to the document's shared Y.Text; others get `edit`, the
    sender gets `ack` with the seq and the position actually used."""

    type: Literal["edit"]
    action: Literal["insert", "delete"]
    position: CollabPosition
    text: Annotated[str, StringConstraints(max_length=32_768)] = ""
    length: CollabPosition | None = None
    client_id: ClientId | None = None


class CursorMove(ClientFrame):
    """The sender's caret moved; others on the JSON protocol get `cursor`."""

    type: Literal["cursor_move"]
    position: CollabPosition


# --------------------------------------------------------------- notifications ----
class MarkRead(ClientFrame):
    """Mark one of the user's notifications read; every tab gets the new unread_count."""

    type: Literal["mark_read"]
    notification_id: Annotated[int, Field(ge=1, le=2**62)]


class MarkAllRead(ClientFrame):
    """Mark all of the user's notifications read; every tab gets unread_count 0."""

    type: Literal["mark_all_read"]


CLIENT_FRAMES: dict[str, dict[str, type[ClientFrame]]] = {
    "chat": {"chat_message": ChatMessage, "typing": Typing},
    "collab": {"edit": CollabEdit, "cursor_move": CursorMove},
    # The dashboard is read-only: viewers send nothing but ping; orders and alerts
    # arrive over REST (POST /api/orders/, /api/dashboard/alerts/).
    "dashboard": {},
    "notifications": {"mark_read": MarkRead, "mark_all_read": MarkAllRead},
    # Read-only: progress is pushed by the report worker.
    "tasks": {},
}
GATEWAY_FRAMES: dict[str, type[ClientFrame]] = {"ping": Ping}

# Server -> client frame types, by route (documentation and tests check against it).
SERVER_FRAMES: dict[str, tuple[str, ...]] = {
    "*": ("error", "pong"),
    "chat": ("history", "online_users", "user_join", "user_leave", "chat_message", "user_typing"),
    "collab": ("document_content", "edit", "ack", "cursor", "user_joined", "user_left"),
    # initial_stats / stats_update {data: stats}; new_order {order}; alert {level, message, ...}
    "dashboard": ("initial_stats", "stats_update", "new_order", "alert"),
    # unread_count {count}; notification {id, title, message, url, timestamp}
    "notifications": ("unread_count", "notification"),
    # task_update {task_id, status, progress, message, result, timestamp} (the seed's)
    "tasks": ("task_update",),
}


class FrameError(Exception):
    """A client frame that cannot be used; carries the error code and a message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def parse_client_frame(route: str, text: str | bytes) -> ClientFrame:
    """Decode and validate one text frame of `route`, or raise FrameError."""
    from switchboard.errors import ErrorCode

    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise FrameError(ErrorCode.INVALID_JSON, "frame is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise FrameError(ErrorCode.INVALID_FRAME, 'frame must be a JSON object with a string "type"')
    kind = data["type"]
    model = GATEWAY_FRAMES.get(kind) or CLIENT_FRAMES.get(route, {}).get(kind)
    if model is None:
        raise FrameError(ErrorCode.UNKNOWN_TYPE, f"unknown frame type {kind[:40]!r} on this route")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "frame"
        raise FrameError(ErrorCode.INVALID_FRAME, f"{where}: {first['msg']}") from None


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def frame(kind: str, **fields) -> str:
    """A server frame as JSON text, encoded once; send the same text to every member."""
    return orjson.dumps({"type": kind, **fields}).decode()


def error_frame(code: str, message: str, retry_after: float | None = None) -> str:
    fields: dict = {"code": str(code), "message": message, "error": message}
    if retry_after is not None:
        fields["retry_after"] = round(retry_after, 3)
    return frame("error", **fields)


# ------------------------------------------------- gateway protocol (gw.*) ----
# Channel-layer messages between ws-gateway and the services. `conn` is the
# connection's channel name on the default (pub/sub) layer; `user` is
# tokens.Identity.as_dict(); `params` are the route's path parameters plus the
# query parameters the route uses (never the token).


class UserDict(TypedDict):
    id: int
    username: str
    is_staff: bool


class GwConnect(TypedDict):
    """gateway -> inbox: a socket opened; answer gw.accept or gw.reject to `conn`."""

    type: Literal["gw.connect"]
    conn: str
    route: str
    user: UserDict
    params: dict[str, str]


class GwReceive(TypedDict):
    """gateway -> inbox: one validated client frame (`frame`) or binary payload (`bytes`)."""

    type: Literal["gw.receive"]
    conn: str
    route: str
    user: UserDict
    params: dict[str, str]
    frame: NotRequired[dict]
    bytes: NotRequired[bytes]


class GwDisconnect(TypedDict):
    """gateway -> inbox: a socket the service had accepted closed."""

    type: Literal["gw.disconnect"]
    conn: str
    route: str
    user: UserDict
    params: dict[str, str]
    code: int


class GwAccept(TypedDict):
    """service -> conn: accept; send `frames` in order, then the group frames that
    arrived meanwhile whose seq is above `watermarks[group]` (so a reconnect replays
    history once, with no gap and no duplicate); join `groups` too.

    A frame that is `bytes` is sent as a binary frame (collab's Yjs sync step 1).
    `kinds` ("text", "bytes") limits which group frames this connection is sent, for
    routes whose group carries both (collab: Yjs clients take binary, JSON clients
    text); frames sent to the connection itself always go through."""

    type: Literal["gw.accept"]
    frames: list[str | bytes]
    groups: NotRequired[list[str]]
    watermarks: NotRequired[dict[str, int]]
    kinds: NotRequired[list[Literal["text", "bytes"]]]


class GwReject(TypedDict):
    """service -> conn: refuse the connection with a close code (closecodes.py)."""

    type: Literal["gw.reject"]
    code: int


class GwSend(TypedDict):
    """service -> conn or group: send `text` (or `bytes`) as is. Group sends may carry
    the stream's `seq` and skip one connection or every connection of one user.

    A stream's seqs are gapless (chat: a room's messages; collab: a document's stored
    updates), and one seq may be several frames, `part` 0, 1, ... The gateway sends
    each (seq, part) to a socket at most once, and closes a socket that would skip a
    seq with 4000: its reconnect replays what the broadcast lost. The watermark of
    gw.accept is where a socket's stream starts; a stream the socket has no watermark
    for is sent as is."""

    type: Literal["gw.send"]
    text: NotRequired[str]
    bytes: NotRequired[bytes]
    seq: NotRequired[int]
    part: NotRequired[int]
    group: NotRequired[str]
    exclude_conn: NotRequired[str]
    exclude_user: NotRequired[int]


class GwJoin(TypedDict):
    """service -> conn: join a group."""

    type: Literal["gw.join"]
    group: str


class GwLeave(TypedDict):
    """service -> conn: leave a group."""

    type: Literal["gw.leave"]
    group: str


class GwClose(TypedDict):
    """service -> conn: close the socket with a code."""

    type: Literal["gw.close"]
    code: int


GW_TO_SERVICE = ("gw.connect", "gw.receive", "gw.disconnect")
GW_TO_CONNECTION = ("gw.accept", "gw.reject", "gw.send", "gw.join", "gw.leave", "gw.close")
