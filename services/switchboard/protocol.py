"""Every message type of Switchboard, in one file, with a banner per service.

Two kinds live here:

* client frames (JSON over the WebSocket), as pydantic models. ws-gateway validates
  each incoming frame once, at the edge, against its route's models; services receive
  the validated dict and trust it.
* server frames, as TypedDicts by route (SERVER_FRAMES). They are built with `frame()`,
  which refuses a type or field not declared here, and encoded once per broadcast.
* the gateway protocol on the channel layer (gw.*) and the commands services send to
  each other's inboxes (notify.create), as TypedDicts.

The frame shapes are the seed document's, so a client written against it works.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, NotRequired, TypedDict, get_args, get_origin, get_type_hints

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from switchboard.text import control_character


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
COLLAB_POSITION_MAX = 10_000_000
CollabPosition = Annotated[int, Field(ge=0, le=COLLAB_POSITION_MAX)]


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

# ---------------------------------------------------------------- server frames ----
# What services and the gateway send to clients, one TypedDict per frame type with its
# fields. `frame()` refuses a type not declared here and a field its type does not have,
# so a frame cannot be sent before it is declared (services/switchboard/tests).


class ErrorFrame(TypedDict):
    """A client frame the server cannot use (switchboard/errors.py); the socket stays open."""

    type: Literal["error"]
    code: str
    message: str
    error: str  # repeats message: the seed's clients read `error`
    retry_after: NotRequired[float]  # rate_limited, busy


class Pong(TypedDict):
    """The gateway's answer to ping."""

    type: Literal["pong"]


class ChatEntry(TypedDict):
    """One stored chat message, in history and as a chat_message frame."""

    seq: int
    user: str
    message: str
    timestamp: str
    client_id: NotRequired[str]
    # A system message (the shop's back end, POST /api/chat/rooms/<slug>/system-messages/):
    # `user` is the name it was posted under, and no user wrote it.
    system: NotRequired[bool]


class History(TypedDict):
    """First frame on a chat socket: the last HISTORY_LIMIT messages, or those after ?since=.
    truncated: more than SINCE_MAX were missed; page the gap over REST."""

    type: Literal["history"]
    messages: list[ChatEntry]
    last_seq: int
    truncated: bool


class OnlineUsers(TypedDict):
    """Distinct users with a socket in the room (from presence), coalesced."""

    type: Literal["online_users"]
    users: list[str]


class UserJoin(TypedDict):
    """A user's first socket in the room opened. Joins of one coalescing window go in
    one frame (chat/online.py): then `users` names them all, `count` says how many, and
    `user` reads "ann, bob, cat and 7 others" for a client that shows only `user`."""

    type: Literal["user_join"]
    user: str
    timestamp: str
    users: NotRequired[list[str]]
    count: NotRequired[int]


class UserLeave(TypedDict):
    """A user's last socket in the room closed (or their gateway died); coalesced like
    user_join."""

    type: Literal["user_leave"]
    user: str
    timestamp: str
    users: NotRequired[list[str]]
    count: NotRequired[int]


class ChatMessageFrame(ChatEntry):
    """A message stored in the room, to everyone, its sender included (the acknowledgement)."""

    type: Literal["chat_message"]


class UserTyping(TypedDict):
    """Someone else in the room is typing (throttled)."""

    type: Literal["user_typing"]
    user: str


class DocumentContent(TypedDict):
    """First frame on a JSON collab socket: the document as it is, and who is here."""

    type: Literal["document_content"]
    document: int
    title: str
    content: str
    seq: int
    role: str  # "owner", "edit", "read"
    users: list[str]


class EditFrame(TypedDict):
    """Another editor's change, as applied (positions in UTF-16 code units)."""

    type: Literal["edit"]
    user: str
    seq: int
    action: Literal["insert", "delete"]
    position: int
    text: str
    length: NotRequired[int]


class Ack(TypedDict):
    """The sender's edit is stored under `seq`; `edits` is what was applied."""

    type: Literal["ack"]
    seq: int
    applied: bool
    edits: list[dict]
    client_id: NotRequired[str]
    duplicate: NotRequired[bool]  # a resend of an edit already stored


class Cursor(TypedDict):
    """Another JSON editor's caret moved."""

    type: Literal["cursor"]
    user: str
    position: int


class UserJoined(TypedDict):
    """Someone opened the document (collab's name; chat says user_join)."""

    type: Literal["user_joined"]
    user: str


class UserLeft(TypedDict):
    """Someone closed the document."""

    type: Literal["user_left"]
    user: str


class InitialStats(TypedDict):
    """First frame on the dashboard: the last stats computed (dashboard/stats.py)."""

    type: Literal["initial_stats"]
    data: dict


class StatsUpdate(TypedDict):
    """The stats, every DASHBOARD_STATS_INTERVAL_SECONDS, to every viewer at once."""

    type: Literal["stats_update"]
    data: dict


class NewOrder(TypedDict):
    """An order was stored (POST /api/orders/)."""

    type: Literal["new_order"]
    order: dict  # dashboard.models.Order.as_dict()


class AlertFrame(TypedDict):
    """A new alert (Alertmanager's webhook or staff)."""

    type: Literal["alert"]
    id: int
    level: Literal["info", "warning", "critical"]
    message: str
    status: str
    name: str
    source: str
    created: str


class UnreadCount(TypedDict):
    """On connect and after every change, to every tab of the user."""

    type: Literal["unread_count"]
    count: int


class NotificationFrame(TypedDict):
    """A new notification for this user, to every open tab (after it is stored)."""

    type: Literal["notification"]
    id: int
    title: str
    message: str
    url: str
    timestamp: str


class TaskUpdate(TypedDict):
    """A report's progress on /ws/tasks/ (the seed's frame); result.url on completed."""

    type: Literal["task_update"]
    task_id: str
    status: Literal["started", "progress", "completed", "failed"]
    progress: int
    message: str
    result: dict
    timestamp: str


# Server frames by route; "*" are sent on every route.
SERVER_FRAMES: dict[str, tuple[type, ...]] = {
    "*": (ErrorFrame, Pong),
    "chat": (History, OnlineUsers, UserJoin, UserLeave, ChatMessageFrame, UserTyping),
    "collab": (DocumentContent, EditFrame, Ack, Cursor, UserJoined, UserLeft),
    "dashboard": (InitialStats, StatsUpdate, NewOrder, AlertFrame),
    "notifications": (UnreadCount, NotificationFrame),
    "tasks": (TaskUpdate,),
}


def _fields(typed: type) -> tuple[str, frozenset[str], frozenset[str]]:
    """(type, required fields, every field) of a frame TypedDict. Read from the evaluated
    hints: with postponed annotations, Python 3.11's __required_keys__ misses NotRequired."""
    hints = get_type_hints(typed, include_extras=True)
    (kind,) = get_args(hints.pop("type"))
    optional = {name for name, hint in hints.items() if get_origin(hint) is NotRequired}
    return kind, frozenset(hints.keys() - optional), frozenset(hints)


# type -> (required fields, every field), for frame()'s check
SERVER_FRAME_TYPES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    kind: (required, every) for frames in SERVER_FRAMES.values() for kind, required, every in map(_fields, frames)
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
    if bad := control_character(data, "frame"):
        # The REST edge's check (switchboard/text.py): nothing stored holds one.
        raise FrameError(ErrorCode.INVALID_FRAME, f"{bad}: control characters are not accepted in text")
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


def _check_fields(kind: str, fields) -> None:
    declared = SERVER_FRAME_TYPES.get(kind)
    if declared is None:
        raise ValueError(f"{kind!r} is not a declared server frame (switchboard/protocol.py)")
    required, allowed = declared
    names = fields.keys()
    if names - allowed or required - names:
        raise ValueError(f"{kind} frame: unknown fields {sorted(names - allowed)}, missing {sorted(required - names)}")


def frame(kind: str, **fields) -> str:
    """A declared server frame as JSON text, encoded once; send the same text to every member."""
    _check_fields(kind, fields)
    return orjson.dumps({"type": kind, **fields}).decode()


def raw_frame(kind: str, field: str, encoded: bytes) -> str:
    """A declared frame whose one field is JSON already encoded once (the dashboard's stats,
    kept encoded in Redis for every viewer): spliced in, not decoded and encoded again."""
    _check_fields(kind, {field: None})
    return '{"type":"' + kind + '","' + field + '":' + encoded.decode() + "}"


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
    updates), and one seq may be several frames, `part` 0, 1, ... of `parts` (each
    part carries the count; 1 when absent). The gateway sends each (seq, part) to a
    socket at most once, and closes a socket that would skip a seq or a part of one
    with 4000 (a part is seen missing when a later part or seq arrives): its reconnect
    replays what the broadcast lost. The watermark of
    gw.accept is where a socket's stream starts; a stream the socket has no watermark
    for is sent as is."""

    type: Literal["gw.send"]
    text: NotRequired[str]
    bytes: NotRequired[bytes]
    seq: NotRequired[int]
    part: NotRequired[int]
    parts: NotRequired[int]
    group: NotRequired[str]
    exclude_conn: NotRequired[str]
    exclude_user: NotRequired[int]


class GwClose(TypedDict):
    """service -> conn: close the socket with a code. Sent to a group with `user`:
    close every socket of that user in the group, on every gateway (collab: a revoked
    role). In the group's own stream, so a frame published to the group after it never
    reaches those sockets (one pub/sub channel keeps its order)."""

    type: Literal["gw.close"]
    code: int
    user: NotRequired[int]


GW_TO_SERVICE = ("gw.connect", "gw.receive", "gw.disconnect")
GW_TO_CONNECTION = ("gw.accept", "gw.reject", "gw.send", "gw.close")


# ------------------------------------------------------------- inbox commands ----
# Commands one service sends to another's inbox (besides the gateway's gw.*).


class NotifyCreate(TypedDict):
    """any service -> notification inbox (switchboard/notify.py): store a notification
    for `user_id`, then push it and the new unread_count to every tab of that user."""

    type: Literal["notify.create"]
    user_id: int
    title: str
    message: str
    url: str


class ChatSystem(TypedDict):
    """chat's HTTP face (the server API) -> chat inbox, on the room's shard: store a system
    message with the room's next seq (once per `client_id`), broadcast it like any message,
    then push {"ok", "message"} or {"ok": false, "error"} to the Redis list `reply_to`."""

    type: Literal["chat.system"]
    room: str
    message: str
    user: str
    client_id: str
    reply_to: str


# command type -> the service whose inbox takes it
INBOX_COMMANDS: dict[str, str] = {"notify.create": "notification", "chat.system": "chat"}
