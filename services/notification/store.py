"""Synchronous data functions of the notification service (used by the inbox worker
through sync_to_async and by the REST views). Every function takes the user's id and
touches only that user's rows: no caller can read, count or mark another user's."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from notification.models import Notification
from switchboard import ownership
from switchboard.protocol import frame

GROUP = "notifications.user.{user}"


def group(user_id: int) -> str:
    """The user's notification stream (routes.toml's group of /ws/notifications/)."""
    return GROUP.format(user=int(user_id))


def as_dict(n: Notification) -> dict:
    return {
        "id": n.id,
        "title": n.title,
        "message": n.message,
        "url": n.url,
        "is_read": n.is_read,
        "timestamp": n.created_at.isoformat(),
    }


def create(user_id: int, title: str, message: str, url: str = "") -> dict:
    fields = {"user_id": int(user_id), "title": title[:200], "message": message, "url": (url or "")[:500]}
    claim = ownership.current.get()
    with transaction.atomic():
        # A worker that lost the user's shard stores nothing (the new owner redoes the
        # command), and a new owner redoing a command the old one stored before it lost
        # the shard finds that row: either way the user is shown it once.
        ownership.check_fence()
        if claim is None:  # a view or a script, not an inbox command
            n = Notification.objects.create(**fields)
        else:
            n, _ = Notification.objects.get_or_create(command=claim.command_id, defaults=fields)
    return as_dict(n)


def create_once(user_id: int, title: str, message: str, url: str, key: str) -> tuple[dict, bool]:
    """Store a notification once per (user, Idempotency-Key); returns (it, created).

    The unique constraint decides, not a read before the insert: of two retries at
    once, one inserts and the other's insert fails and reads the winner's row."""
    fields = {"user_id": int(user_id), "title": title[:200], "message": message, "url": (url or "")[:500]}
    try:
        with transaction.atomic():
            n = Notification.objects.create(idempotency_key=key, **fields)
        return as_dict(n), True
    except IntegrityError:
        return as_dict(Notification.objects.get(user_id=int(user_id), idempotency_key=key)), False


def unread_count(user_id: int) -> int:
    return Notification.objects.filter(user_id=user_id, is_read=False).count()


def mark_read(user_id: int, notification_id: int) -> bool:
    """True if the notification exists and is the user's (read or not)."""
    mine = Notification.objects.filter(user_id=user_id, id=notification_id)
    if not mine.exists():
        return False
    mine.update(is_read=True)
    return True


def mark_all_read(user_id: int) -> int:
    return Notification.objects.filter(user_id=user_id, is_read=False).update(is_read=True)


def page(user_id: int, unread: bool, limit: int, offset: int) -> tuple[list[dict], int]:
    qs = Notification.objects.filter(user_id=user_id)
    if unread:
        qs = qs.filter(is_read=False)
    return [as_dict(n) for n in qs.order_by("-id")[offset : offset + limit]], qs.count()


def notification_frame(n: dict) -> str:
    """The seed's push frame: {type, id, title, message, url, timestamp}."""
    return frame(
        "notification", id=n["id"], title=n["title"], message=n["message"], url=n["url"], timestamp=n["timestamp"]
    )


def count_frame(count: int) -> str:
    return frame("unread_count", count=count)
