"""`send_user_notification`: how any service notifies a user (the seed's helper).

It sends a `notify.create` command to the notification service's inbox shard of that
user; the notification service stores it, then pushes it to every open tab. Services
never write the notification database. Works from async code (`await
send_user_notification_async(...)`) and sync code (views, Celery tasks).
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from switchboard.protocol import INBOX_COMMANDS, NotifyCreate
from switchboard.routes import command_key, shard_channel

INBOX = INBOX_COMMANDS["notify.create"]


async def send_user_notification_async(user_id: int, title: str, message: str, url: str = "") -> None:
    command: NotifyCreate = {
        "type": "notify.create",
        "user_id": int(user_id),
        "title": title,
        "message": message,
        "url": url or "",
    }
    await get_channel_layer("inbox").send(shard_channel(INBOX, command_key(command)), command)


def send_user_notification(user_id: int, title: str, message: str, url: str = "") -> None:
    async_to_sync(send_user_notification_async)(user_id, title, message, url)
