"""Chat's writes and reads, synchronous, in one place (the inbox and the REST API
both call these). Persisting assigns the room's next seq in the same transaction."""

from __future__ import annotations

import bisect

from django.db import IntegrityError, connection, transaction

from chat.models import ChatRoom, Message
from switchboard import ownership
from switchboard.tokens import Identity


def get_room(slug: str) -> ChatRoom | None:
    return ChatRoom.objects.filter(slug=slug).first()


def _take_next_seq(room_id: int) -> int:
    """Increment the room's last_seq and return it, in one statement: UPDATE ... RETURNING
    (SQLite >= 3.35, PostgreSQL). The ORM needs an UPDATE and a SELECT for it, and the
    ORM's per-query cost was most of a chat message's handling (docs/performance.md).
    The row stays locked until the transaction ends, so one room's seqs never repeat."""
    table, pk, seq = (
        connection.ops.quote_name(name)
        for name in (ChatRoom._meta.db_table, ChatRoom._meta.pk.column, ChatRoom._meta.get_field("last_seq").column)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {seq} = {seq} + 1 WHERE {pk} = %s RETURNING {seq}", [room_id])
        row = cursor.fetchone()
    if row is None:
        raise ChatRoom.DoesNotExist(f"room {room_id}")
    return row[0]


def post_message(room_id: int, author: Identity, text: str, client_id: str | None) -> tuple[Message, bool]:
    """Store a message once; returns (message, created). A resend returns the original.

    A resend is rare, so it is found by the unique (room, user, client_id) constraint,
    not by a query before every insert: its transaction, seq included, rolls back."""
    try:
        with transaction.atomic():
            ownership.check_fence()  # a worker that lost the room's shard stores nothing
            message = Message.objects.create(
                room_id=room_id,
                seq=_take_next_seq(room_id),
                user_id=author.id,
                username=author.username,
                content=text,
                client_id=client_id,
            )
        return message, True
    except IntegrityError:
        existing = client_id and Message.objects.filter(room_id=room_id, user_id=author.id, client_id=client_id).first()
        if existing:
            return existing, False
        raise


def history(room: ChatRoom, since: int | None, limit: int, since_max: int) -> tuple[list[dict], int, bool]:
    """(messages oldest first, room's last seq, truncated) for a connecting client.

    With `since`, exactly the messages after it (at most since_max, the newest ones;
    `truncated` tells the client to page the gap over REST); else the last `limit`.
    """
    last_seq = ChatRoom.objects.values_list("last_seq", flat=True).get(pk=room.pk)
    return _history(room, last_seq, since, limit, since_max)


def _history(room: ChatRoom, last_seq: int, since: int | None, limit: int, since_max: int):
    qs = Message.objects.filter(room=room, seq__lte=last_seq)
    if since is not None:
        qs = qs.filter(seq__gt=since)
        limit = since_max
    newest = list(qs.order_by("-seq")[: limit + 1])
    truncated = since is not None and len(newest) > limit
    newest = newest[:limit]
    return [m.as_frame_fields() for m in reversed(newest)], last_seq, truncated


def connect_snapshot(
    slug: str, sinces: list[int | None], limit: int, since_max: int
) -> tuple[int, int, dict[int | None, tuple[list[dict], bool]]] | None:
    """What connecting clients are sent, in one call from the inbox worker and two
    queries whatever their number: (room id, last seq, {since: (messages, truncated)}),
    each slice exactly what history() gives for that `since`, or None for no such room.
    The room's row read here is as fresh as history()'s own read of last_seq.

    One read serves every `since`: the messages after `since` are a prefix of the room's
    messages newest first, so the newest after the smallest `since` (or after none, if a
    client has none), as many as the largest slice needs, hold every client's slice and
    tell whether it is truncated."""
    room = get_room(slug)
    if room is None:
        return None
    last_seq = room.last_seq
    qs = Message.objects.filter(room=room, seq__lte=last_seq)
    if None not in sinces:
        qs = qs.filter(seq__gt=min(sinces))
    # Rows each client's slice needs: `limit` without `since`; with one, since_max + 1
    # (to tell truncation), and never more than the seqs after it (seqs are unique).
    need = max(limit if since is None else min(since_max + 1, max(0, last_seq - since)) for since in sinces)
    newest = list(qs.order_by("-seq")[:need])
    descending = [-m.seq for m in newest]  # ascending, for bisect
    fields: dict[int, dict] = {}  # one encoding per message, shared by the slices

    def encoded(rows: list[Message]) -> list[dict]:
        return [fields.get(m.seq) or fields.setdefault(m.seq, m.as_frame_fields()) for m in reversed(rows)]

    slices: dict[int | None, tuple[list[dict], bool]] = {}
    for since in set(sinces):
        if since is None:
            slices[since] = (encoded(newest[:limit]), False)
            continue
        after = bisect.bisect_left(descending, -since)  # newest[:after]: the messages after `since`
        slices[since] = (encoded(newest[: min(after, since_max)]), after > since_max)
    return room.pk, last_seq, slices


def page(room: ChatRoom, before: int | None, after: int | None, limit: int) -> tuple[list[dict], bool]:
    """A page of messages for the REST API, oldest first; has_more says another page exists."""
    qs = Message.objects.filter(room=room)
    if after is not None:
        rows = list(qs.filter(seq__gt=after).order_by("seq")[: limit + 1])
        return [m.as_frame_fields() for m in rows[:limit]], len(rows) > limit
    if before is not None:
        qs = qs.filter(seq__lt=before)
    rows = list(qs.order_by("-seq")[: limit + 1])
    return [m.as_frame_fields() for m in reversed(rows[:limit])], len(rows) > limit
