"""Pushes after a write: new_order and alert frames to the dashboard group, and the
buyer's notification. Each runs after the data is stored and never fails the
request: the order or alert is in the database (viewers see it in the latest lists
on their next load), so a Redis hiccup costs a live update, counted, not a sale."""

from __future__ import annotations

import logging

from dashboard import stats
from dashboard.models import Alert, Order
from switchboard import metrics, publish
from switchboard.notify import send_user_notification
from switchboard.protocol import frame

log = logging.getLogger(__name__)


def order_pushed(order: Order) -> None:
    try:
        publish.send_to_group_sync(stats.group(), frame("new_order", order=order.as_dict()))
    except Exception:
        metrics.DASHBOARD_PUBLISH_ERRORS.labels("new_order").inc()
        log.exception("new_order %s not pushed to the dashboard", order.pk)
    notify_buyer(order)


def shop_order_pushed(order: dict) -> None:
    """The shop's own order (the server API), pushed as new_order and stored nowhere."""
    try:
        publish.send_to_group_sync(stats.group(), frame("new_order", order=order))
    except Exception:
        metrics.DASHBOARD_PUBLISH_ERRORS.labels("new_order").inc()
        log.exception("the shop's order %s not pushed to the dashboard", str(order.get("id"))[:64])


def notify_buyer(order: Order) -> None:
    """The buyer's "order received" notification, through the notification inbox.

    When no notification worker consumes its inbox, the command expires there after
    INBOX_EXPIRY_SECONDS, or the inbox is full (ChannelFull): either way the order
    stands, and the miss is counted.
    """
    try:
        send_user_notification(
            order.user_id,
            "Order received",
            f"Order #{order.pk} for {order.total:.2f} is {order.status}.",
            url="",  # no order page yet; the notification carries what the buyer needs
        )
    except Exception:
        metrics.DASHBOARD_PUBLISH_ERRORS.labels("notification").inc()
        log.exception("order %s: buyer %s not notified", order.pk, order.user_id)


def alert_pushed(alert: Alert) -> None:
    try:
        publish.send_to_group_sync(stats.group(), frame("alert", **alert.as_dict()))
    except Exception:
        metrics.DASHBOARD_PUBLISH_ERRORS.labels("alert").inc()
        log.exception("alert %s not pushed to the dashboard", alert.pk)
