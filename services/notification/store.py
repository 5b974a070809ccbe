"""Notification's writes and reads, every one scoped to one user: no function here can
reach another user's notifications, whatever id a client sends."""

from __future__ import annotations

from notification.models import Notification

TITLE_MAX = 200
URL_MAX = 500


def create(user_id: int, title: str, message: str, url: str = "") -> Notification:
    return Notification.objects.create(user_id=user_id, title=title[:TITLE_MAX], message=message, url=url[:URL_MAX])


def get(user_id: int, notification_id: int) -> Notification | None:
    return Notification.objects.filter(user_id=user_id, pk=notification_id).first()


def unread_count(user_id: int) -> int:
    return Notification.objects.filter(user_id=user_id, is_read=False).count()


def mark_read(user_id: int, notification_id: int) -> bool:
    """True if the notification exists and is this user's (read or not)."""
    if not Notification.objects.filter(user_id=user_id, pk=notification_id).exists():
        return False
    Notification.objects.filter(user_id=user_id, pk=notification_id).update(is_read=True)
    return True


def mark_all_read(user_id: int) -> int:
    return Notification.objects.filter(user_id=user_id, is_read=False).update(is_read=True)


def page(user_id: int, unread_only: bool, before_id: int | None, limit: int) -> tuple[list[dict], bool]:
    qs = Notification.objects.filter(user_id=user_id)
    if unread_only:
        qs = qs.filter(is_read=False)
    if before_id is not None:
        qs = qs.filter(pk__lt=before_id)
    rows = list(qs.order_by("-id")[: limit + 1])
    return [n.as_frame_fields() for n in rows[:limit]], len(rows) > limit
