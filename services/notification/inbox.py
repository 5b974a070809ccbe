"""The notification inbox worker: decides every /ws/notifications/ socket and stores
the notifications other services send (`notify.create`, see switchboard.notify).

The inbox is sharded by user, so one user's commands (a create, then a mark_read from
a tab) are handled in order. Persist first, then push: a frame a tab saw is in the
database, and a user who was offline gets the right unread_count on the next connect.
Counts go to the user's group, so every open tab shows the same number.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async

from notification import store
from switchboard import metrics, publish
from switchboard.errors import ErrorCode
from switchboard.inbox import InboxConsumer
from switchboard.protocol import INBOX_COMMANDS


class NotificationInbox(InboxConsumer):
    service = "notification"
    commands = tuple(kind for kind, service in INBOX_COMMANDS.items() if service == "notification")

    async def gw_connect(self, cmd):
        # The gateway joined the socket to notifications.user.<id> before asking, so a
        # push stored after this count is still seen by this tab.
        count = await sync_to_async(store.unread_count)(self.identity(cmd).id)
        await publish.accept(cmd["conn"], [store.count_frame(count)])

    async def gw_disconnect(self, cmd):
        """Nothing to keep per socket: the gateway leaves the group."""

    async def frame_mark_read(self, cmd, frame):
        user = self.identity(cmd).id
        if not await sync_to_async(store.mark_read)(user, frame["notification_id"]):
            # Someone else's id looks exactly like a missing one: nothing leaks.
            return await publish.send_error(cmd["conn"], ErrorCode.NOT_FOUND, "no such notification")
        await self._push_count(user)

    async def frame_mark_all_read(self, cmd, frame):
        user = self.identity(cmd).id
        await sync_to_async(store.mark_all_read)(user)
        await self._push_count(user)

    async def notify_create(self, cmd):
        user = int(cmd["user_id"])
        n = await sync_to_async(store.create)(
            user, str(cmd["title"]), str(cmd.get("message", "")), str(cmd.get("url") or "")
        )
        metrics.NOTIFICATIONS_CREATED.labels("inbox").inc()
        await publish.send_to_group(store.group(user), store.notification_frame(n))
        await self._push_count(user)

    async def _push_count(self, user: int) -> None:
        count = await sync_to_async(store.unread_count)(user)
        await publish.send_to_group(store.group(user), store.count_frame(count))
