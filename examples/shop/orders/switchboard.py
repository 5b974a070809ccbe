"""Everything the shop says to Switchboard, in one module: the events of its own back
end (an order placed, a report's progress) and the chat room of a customer's orders.

The views call these functions; nothing else in the shop knows Switchboard's URLs. The
users' connection tokens are the Python client's (switchboard_client.django.user_token,
served by its token_view), signed with settings.SWITCHBOARD_SHOP_KEY; the calls below
go through its server API with settings.SWITCHBOARD_API_KEY.
"""

from __future__ import annotations

from django.conf import settings
from switchboard_client import Client, Conflict
from switchboard_client.django import client, send_new_order, send_task_update, send_user_notification, user_token


def room_of(user) -> str:
    """The chat room of a customer's orders (a slug of Switchboard's chat). Rooms are
    open to every signed-in user who knows the slug: nothing secret goes in one."""
    return f"shop-orders-{user.pk}"


def ensure_room(user) -> None:
    """Make the customer's order room in Switchboard's chat unless it exists (409). The
    chat API makes rooms for users, not API keys: the shop makes it as its customer."""
    with Client(settings.SWITCHBOARD_URL, api_key=user_token(user)) as as_the_user:
        try:
            as_the_user.request(
                "POST", "/api/chat/rooms/", json={"name": f"Orders of {user.get_username()}", "slug": room_of(user)}
            )
        except Conflict:
            pass


def order_placed(order) -> None:
    """A new order: the buyer's notification, the staff dashboard's new_order, and a
    system message in the buyer's order chat. Each call carries a key of this order, so
    running this again (a retry after a timeout) stores nothing twice."""
    key = f"order-{order.pk}"
    send_user_notification(
        order.buyer, f"Order #{order.pk} received", f"{order.item}, {order.total}", url="/", idempotency_key=key
    )
    send_new_order(order.pk, order.buyer, f"{order.total}", created=order.created.isoformat())
    client().system_message(
        room_of(order.buyer), f"Order #{order.pk} placed: {order.item}, {order.total}", user="shop", idempotency_key=key
    )


def task_update(user, task_id: str, status: str, progress: int, message: str, result: dict | None = None) -> None:
    """A report's state to its user's /ws/tasks/ (stored: a page opened later reads it)."""
    send_task_update(user, task_id, status, progress, message, result)
