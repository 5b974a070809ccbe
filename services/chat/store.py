"""Chat's writes and reads, synchronous, in one place (the inbox and the REST API
both call these). Persisting assigns the room's next seq in the same transaction."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F

from chat.models import ChatRoom, Message
from switchboard.tokens import Identity


def get_room(slug: str) -> ChatRoom | None:
    return ChatRoom.objects.filter(slug=slug).first()


def post_message(room_id: int, author: Identity, text: str, client_id: str | None) -> tuple[Message, bool]:
    """Store a message once; returns (message, created). A resend returns the original."""
    if client_id:
        existing = Message.objects.filter(room_id=room_id, user_id=author.id, client_id=client_id).first()
        if existing:
            return existing, False
    try:
        with transaction.atomic():
            ChatRoom.objects.filter(pk=room_id).update(last_seq=F("last_seq") + 1)
            seq = ChatRoom.objects.values_list("last_seq", flat=True).get(pk=room_id)
            message = Message.objects.create(
                room_id=room_id,
                seq=seq,
                user_id=author.id,
                username=author.username,
                content=text,
                client_id=client_id,
            )
        return message, True
    except IntegrityError:
        if client_id:  # a concurrent resend won the race; it is the same message
            return Message.objects.get(room_id=room_id, user_id=author.id, client_id=client_id), False
        raise


def history(room: ChatRoom, since: int | None, limit: int, since_max: int) -> tuple[list[dict], int, bool]:
    """(messages oldest first, room's last seq, truncated) for a connecting client.

    With `since`, exactly the messages after it (at most since_max, the newest ones;
    `truncated` tells the client to page the gap over REST); else the last `limit`.
    """
    last_seq = ChatRoom.objects.values_list("last_seq", flat=True).get(pk=room.pk)
    qs = Message.objects.filter(room=room, seq__lte=last_seq)
    if since is not None:
        qs = qs.filter(seq__gt=since)
        limit = since_max
    newest = list(qs.order_by("-seq")[: limit + 1])
    truncated = since is not None and len(newest) > limit
    newest = newest[:limit]
    return [m.as_frame_fields() for m in reversed(newest)], last_seq, truncated


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
