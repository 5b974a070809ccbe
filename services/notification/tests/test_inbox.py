"""The notification inbox worker, driven with real channel layers: the test plays
ws-gateway and, through switchboard.notify, another service."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from channels.testing import ApplicationCommunicator

from notification import store
from notification.inbox import NotificationInbox
from switchboard.notify import send_user_notification_async
from switchboard.routes import shard_channel

pytestmark = [pytest.mark.usefixtures("channel_layers"), pytest.mark.django_db(transaction=True)]
ALICE = {"id": 1, "username": "alice", "is_staff": False}
BOB = {"id": 2, "username": "bob", "is_staff": False}


async def receive(channel, timeout=5):
    return await asyncio.wait_for(get_channel_layer().receive(channel), timeout)


def start():
    return ApplicationCommunicator(NotificationInbox.as_asgi(), {"type": "channel", "channel": "notification.0"})


async def test_connect_accepts_with_the_unread_count_of_that_user_only():
    await asyncio.to_thread(store.create, 1, "a", "m")
    await asyncio.to_thread(store.create, 1, "b", "m")
    await asyncio.to_thread(store.create, 2, "c", "m")
    conn = await get_channel_layer().new_channel()
    app = start()
    await app.send_input({"type": "gw.connect", "conn": conn, "route": "notifications", "user": ALICE, "params": {}})
    accept = await receive(conn)
    assert accept["type"] == "gw.accept" and accept["frames"] == ['{"type":"unread_count","count":2}']
    app.stop()


async def test_helper_command_is_stored_then_pushed_to_the_users_group():
    layer = get_channel_layer()
    tab = await layer.new_channel()
    await layer.group_add(store.group(1), tab)
    other = await layer.new_channel()
    await layer.group_add(store.group(2), other)
    # What another service does: a command on the user's inbox shard.
    await send_user_notification_async(1, "Report ready", "done", "/r/1/")
    command = await asyncio.wait_for(get_channel_layer("inbox").receive(shard_channel("notification", "1")), 5)
    app = start()
    await app.send_input(command)
    pushed = await receive(tab)
    assert '"type":"notification"' in pushed["text"] and '"title":"Report ready"' in pushed["text"]
    assert (await receive(tab))["text"] == '{"type":"unread_count","count":1}'
    assert await asyncio.to_thread(store.unread_count, 1) == 1
    with pytest.raises(TimeoutError):
        await receive(other, timeout=0.5)
    app.stop()


async def test_mark_read_is_scoped_to_the_user_and_updates_every_tab():
    n = await asyncio.to_thread(store.create, 1, "a", "m")
    layer = get_channel_layer()
    tab = await layer.new_channel()
    await layer.group_add(store.group(1), tab)
    bob_conn = await layer.new_channel()
    app = start()
    base = {"type": "gw.receive", "route": "notifications", "params": {}}
    await app.send_input(
        {**base, "conn": bob_conn, "user": BOB, "frame": {"type": "mark_read", "notification_id": n["id"]}}
    )
    assert '"code":"not_found"' in (await receive(bob_conn))["text"]
    assert await asyncio.to_thread(store.unread_count, 1) == 1
    await app.send_input(
        {**base, "conn": tab, "user": ALICE, "frame": {"type": "mark_read", "notification_id": n["id"]}}
    )
    assert (await receive(tab))["text"] == '{"type":"unread_count","count":0}'
    await asyncio.to_thread(store.create, 1, "b", "m")
    await app.send_input({**base, "conn": tab, "user": ALICE, "frame": {"type": "mark_all_read"}})
    assert (await receive(tab))["text"] == '{"type":"unread_count","count":0}'
    app.stop()
