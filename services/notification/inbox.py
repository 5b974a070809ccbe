"""Notification's inbox worker: each user's notification stream, one shard per user.

Commands for one user arrive on one shard and are handled in order, so the unread
counts every tab sees follow the changes in the order they were made. Persist first,
then push: a user who was offline finds the notification and the right count on the
next connect. Other services reach it with `notify.create` (switchboard/notify.py);
the REST API stores and then asks for `notify.push`, so pushes stay in that order too.
"""

from __future__ import annotations

from channels.db import database_sync_to_async

from notification import store
from switchboard import metrics, publish, routes
from switchboard.errors import ErrorCode
from switchboard.inbox import InboxConsumer
from switchboard.protocol import frame


def user_group(user_id: int) -> str:
    """The user's notification group, from the route table (the gateway joins it)."""
    route = next(r for r in routes.load().websocket if r.name == "notifications")
    return route.group.format(user=user_id)


async def push_count(user_id: int) -> None:
    count = await database_sync_to_async(store.unread_count)(user_id)
    await publish.send_to_group(user_group(user_id), frame("unread_count", count=count))


class NotificationInbox(InboxConsumer):
    service = "notification"
    commands = ("notify.create", "notify.push")

    async def gw_connect(self, cmd):
        user = self.identity(cmd)
        count = await database_sync_to_async(store.unread_count)(user.id)
        await publish.accept(cmd["conn"], [frame("unread_count", count=count)])

    async def frame_mark_read(self, cmd, data):
        user = self.identity(cmd)
        if not await database_sync_to_async(store.mark_read)(user.id, data["notification_id"]):
            # Someone else's id looks exactly like a missing one: nothing is revealed.
            return await publish.send_error(cmd["conn"], ErrorCode.NOT_FOUND, "no such notification")
        await push_count(user.id)

    async def frame_mark_all_read(self, cmd, data):
        user = self.identity(cmd)
        await database_sync_to_async(store.mark_all_read)(user.id)
        await push_count(user.id)

    async def notify_create(self, cmd):
        note = await database_sync_to_async(store.create)(
            int(cmd["user_id"]), str(cmd["title"]), str(cmd["message"]), str(cmd.get("url") or "")
        )
        await self._push(note)

    async def notify_push(self, cmd):
        note = await database_sync_to_async(store.get)(int(cmd["user_id"]), int(cmd["id"]))
        if note is not None:
            await self._push(note)

    async def _push(self, note) -> None:
        fields = note.as_frame_fields()
        fields.pop("is_read")
        await publish.send_to_group(user_group(note.user_id), frame("notification", **fields))
        await push_count(note.user_id)
        metrics.NOTIFICATIONS.labels("pushed").inc()
