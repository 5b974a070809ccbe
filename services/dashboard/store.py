"""The dashboard's writes and reads, synchronous, in one place (the REST views, the
inbox worker and the stats publisher call these)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.db.models.functions import TruncMinute
from django.utils import timezone

from dashboard.models import Alert, Order
from switchboard.tokens import Identity

# Minutes of history in the per-minute chart.
SERIES_MINUTES = 30


def create_order(buyer: Identity, total: Decimal, items: list[dict], key: str | None) -> tuple[Order, bool]:
    """Store an order once per Idempotency-Key; returns (order, created)."""
    if key:
        existing = Order.objects.filter(user_id=buyer.id, idempotency_key=key).first()
        if existing:
            return existing, False
    try:
        with transaction.atomic():
            order = Order.objects.create(
                user_id=buyer.id, username=buyer.username, total=total, items=items, idempotency_key=key
            )
        return order, True
    except IntegrityError:
        if key:  # a concurrent retry won the race: it is the same order
            return Order.objects.get(user_id=buyer.id, idempotency_key=key), False
        raise


def list_orders(viewer: Identity, limit: int, offset: int) -> tuple[list[Order], int]:
    """A page of orders, newest first: the viewer's own; every order for staff."""
    qs = Order.objects.all() if viewer.is_staff else Order.objects.filter(user_id=viewer.id)
    return list(qs[offset : offset + limit]), qs.count()


def alert_fingerprint(labels: dict) -> str:
    """Alertmanager's fingerprint when it sends none: a stable hash of the labels."""
    text = "\x00".join(f"{k}={labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def store_alert(**fields) -> tuple[Alert, bool]:
    """Store one alert; an Alertmanager state already stored returns (that alert, False)."""
    if fields.get("source") == "alertmanager":
        existing = Alert.objects.filter(
            source="alertmanager",
            fingerprint=fields["fingerprint"],
            status=fields["status"],
            starts_at=fields.get("starts_at"),
        ).first()
        if existing:
            return existing, False
    try:
        with transaction.atomic():
            return Alert.objects.create(**fields), True
    except IntegrityError:  # the same notification delivered twice at once
        return Alert.objects.get(
            source="alertmanager",
            fingerprint=fields["fingerprint"],
            status=fields["status"],
            starts_at=fields.get("starts_at"),
        ), False


def recent_alerts(limit: int) -> list[Alert]:
    return list(Alert.objects.all()[:limit])


def minute_floor(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def order_figures(now: datetime | None = None, minutes: int = SERIES_MINUTES) -> dict:
    """Today's orders and revenue (UTC day) and orders per minute over the last `minutes`.

    Two aggregate queries whatever the number of orders or viewers.
    """
    now = now or timezone.now()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = Order.objects.filter(created__gte=day_start).exclude(status="cancelled")
    totals = today.aggregate(n=Count("id"), revenue=Sum("total"))
    first = minute_floor(now) - timedelta(minutes=minutes - 1)
    per_minute = dict(
        Order.objects.filter(created__gte=first)
        .annotate(minute=TruncMinute("created"))
        .values("minute")
        .annotate(n=Count("id"))
        .values_list("minute", "n")
    )
    # Keyed by the minute's epoch second: SQLite and PostgreSQL return the minute with
    # different tzinfo objects, which compare equal but hash alike only as numbers.
    by_epoch = {int(m.timestamp()): n for m, n in per_minute.items()}
    series = [by_epoch.get(int((first + timedelta(minutes=i)).timestamp()), 0) for i in range(minutes)]
    return {
        "today_orders": totals["n"] or 0,
        "today_revenue": f"{totals['revenue'] or Decimal(0):.2f}",
        "orders_per_minute": series,
        "first_minute": first,
    }
