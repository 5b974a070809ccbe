"""The notification inbox, with real channel layers: the test plays ws-gateway and
another service sending notify.create."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from channels.testing import ApplicationCommunicator

from notification import store
from notification.inbox import NotificationInbox
from switchboard.notify import send_user_notification_async

pytestmark = [pytest.mark.usefixtures("channel_layers"), pytest.mark.django_db(transaction=True)]
ALICE = {"id": 1, "username": "alice", "is_staff": False}
BOB = {"id": 2, "username": "bob", "is_staff": False}


async def receive(channel, timeout=5):
    return await asyncio.wait_for(get_channel_layer().receive(channel), timeout)


async def test_connect_accepts_with_the_unread_count():
    await asyncio.to_thread(store.create, 1, "t", "m")
    conn = await get_channel_layer().new_channel()
    app = ApplicationCommunicator(NotificationInbox.as_asgi(), {"type": "channel", "channel": "notification.0"})
    await app.send_input({"type": "gw.connect", "conn": conn, "route": "notifications", "user": ALICE, "params": {}})
    accept = await receive(conn)
    assert accept["frames"] == ['{"type":"unread_count","count":1}']
    app.stop()


async def test_notify_create_is_stored_then_pushed_to_the_users_group_only():
    layer = get_channel_layer()
    alice_tab, bob_tab = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("notifications.user.1", alice_tab)
    await layer.group_add("notifications.user.2", bob_tab)
    # What another service does (switchboard.notify), taken off the inbox as the worker would.
    await send_user_notification_async(1, "Order shipped", "on its way", "/orders/1/")
    from switchboard.routes import shard_channel

    command = await get_channel_layer("inbox").receive(shard_channel("notification", "1"))
    app = ApplicationCommunicator(NotificationInbox.as_asgi(), {"type": "channel", "channel": "notification.0"})
    await app.send_input(command)
    pushed = await receive(alice_tab)
    assert '"type":"notification"' in pushed["text"] and '"title":"Order shipped"' in pushed["text"]
    assert (await receive(alice_tab))["text"] == '{"type":"unread_count","count":1}'
    assert await asyncio.to_thread(store.unread_count, 1) == 1
    with pytest.raises(asyncio.TimeoutError):
        await receive(bob_tab, timeout=0.3)
    app.stop()


async def test_mark_read_of_another_users_id_is_an_error_and_changes_nothing():
    note = await asyncio.to_thread(store.create, 1, "t", "m")
    conn = await get_channel_layer().new_channel()
    app = ApplicationCommunicator(NotificationInbox.as_asgi(), {"type": "channel", "channel": "notification.0"})
    await app.send_input(
        {
            "type": "gw.receive",
            "conn": conn,
            "route": "notifications",
            "user": BOB,
            "params": {},
            "frame": {"type": "mark_read", "notification_id": note.pk},
        }
    )
    assert '"code":"not_found"' in (await receive(conn))["text"]
    assert await asyncio.to_thread(store.unread_count, 1) == 1
    app.stop()
