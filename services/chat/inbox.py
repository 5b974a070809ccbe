"""Chat's inbox worker: decides every chat socket's fate and stores every message.

Commands for one room arrive on one shard and are handled one at a time, so the
order in which messages are stored (their seq) is the order everyone sees. A
message is stored before it is broadcast; its echo, with seq and the client's
client_id, is the sender's acknowledgement.

Presence notices: `user_join` / `user_leave` go out at once, one per user (the seed's
shapes), but a room's `online_users` list is broadcast at most once per
ONLINE_USERS_COALESCE_SECONDS, read from presence when it is sent. A list per join made
filling a room of N users cost N lists of up to N names to N sockets (docs/performance.md
and bench/results/hot-path-changes.md: 1,000 users took minutes); now a join storm costs a few lists.
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels.db import database_sync_to_async

from chat import store
from switchboard import metrics, publish, routes
from switchboard.closecodes import CloseCode
from switchboard.config import env_float, env_int
from switchboard.errors import ErrorCode
from switchboard.inbox import InboxConsumer
from switchboard.presence import shared as presence
from switchboard.protocol import frame, now_iso

log = logging.getLogger(__name__)


def room_group(slug: str) -> str:
    """The room's group, from the route table (the gateway joins the same one)."""
    route = next(r for r in routes.load().websocket if r.name == "chat")
    return route.group.format(room=slug)


class ChatInbox(InboxConsumer):
    service = "chat"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.last_typing: dict[tuple[str, int], float] = {}
        self.rooms: dict[str, int] = {}  # slug -> id; rooms are never renamed
        # Who this shard last told each room was online; the sweeper compares it with
        # presence to announce users whose gateway died without saying goodbye.
        self.announced: dict[str, set[str]] = {}
        # Rooms whose online list is due (a join or leave since the last one was sent),
        # and the tasks sending them, kept so they are not garbage collected mid-send.
        self.list_due: set[str] = set()
        self.list_tasks: set[asyncio.Future] = set()

    async def __call__(self, scope, receive, send):
        sweeper = asyncio.ensure_future(self.sweep_forever())
        try:
            await super().__call__(scope, receive, send)
        finally:
            sweeper.cancel()
            for task in self.list_tasks:
                task.cancel()

    def online_list_soon(self, slug: str) -> None:
        """Broadcast the room's online list once the coalescing window has passed;
        every join and leave until then is in that one list."""
        if slug in self.list_due:
            return
        self.list_due.add(slug)
        loop = asyncio.get_running_loop()

        def fire():
            task = asyncio.ensure_future(self.send_online_list(slug))
            self.list_tasks.add(task)
            task.add_done_callback(self.list_tasks.discard)

        loop.call_later(env_float("ONLINE_USERS_COALESCE_SECONDS"), fire)

    async def send_online_list(self, slug: str) -> None:
        # Due no longer before reading: a join while we read schedules the next list.
        self.list_due.discard(slug)
        group = room_group(slug)
        try:
            online = await presence().users(group)
            await publish.send_to_group(group, frame("online_users", users=online))
        except Exception:
            log.exception("chat: online list of %s not sent", slug)

    async def sweep_forever(self) -> None:
        interval = env_float("PRESENCE_HEARTBEAT_SECONDS")
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("chat presence sweep failed")

    async def sweep(self) -> None:
        """Announce users who vanished without a disconnect (their gateway died and
        their presence expired): user_leave, then the new online list."""
        for slug, before in list(self.announced.items()):
            group = room_group(slug)
            now = set(await presence().users(group))
            gone = before - now
            if not now:
                self.announced.pop(slug, None)
            else:
                self.announced[slug] = now
            for username in sorted(gone):
                await publish.send_to_group(group, frame("user_leave", user=username, timestamp=now_iso()))
            if gone and now:
                self.online_list_soon(slug)

    async def room_id(self, slug: str) -> int | None:
        if slug not in self.rooms:
            room = await database_sync_to_async(store.get_room)(slug)
            if room is None:
                return None
            self.rooms[slug] = room.pk
        return self.rooms[slug]

    async def gw_connect(self, cmd):
        conn, slug = cmd["conn"], cmd["params"]["room"]
        room = await database_sync_to_async(store.get_room)(slug)
        if room is None:
            return await publish.reject(conn, CloseCode.NOT_FOUND)
        since = cmd["params"].get("since")  # an int or absent: typed by the gateway (routes.toml)
        messages, last_seq, truncated = await database_sync_to_async(store.history)(
            room, since, env_int("HISTORY_LIMIT"), env_int("SINCE_MAX")
        )
        group = room_group(slug)
        user = self.identity(cmd)
        # One read of the room's presence answers all three questions below.
        members = await presence().members(group)
        if not any(m.conn == conn for m in members):
            # The socket closed while this command waited (e.g. the worker was down
            # past the gateway's connect timeout): nobody to accept, nothing to announce.
            return
        online = sorted({m.username for m in members})
        # Kept, not replaced: someone who vanished since must stay for the sweeper to see.
        self.announced.setdefault(slug, set()).update(online)
        history = frame("history", messages=messages, last_seq=last_seq, truncated=truncated)
        await publish.accept(conn, [history, frame("online_users", users=online)], watermarks={group: last_seq})
        if not any(m.user_id == user.id and m.conn != conn for m in members):
            await publish.send_to_group(group, frame("user_join", user=user.username, timestamp=now_iso()))
            self.online_list_soon(slug)

    async def gw_disconnect(self, cmd):
        slug = cmd["params"]["room"]
        group = room_group(slug)
        user = self.identity(cmd)
        # The gateway removed this socket's presence before telling us; another tab
        # of the same user keeps them in the room.
        if await presence().is_present(group, user.id):
            return
        if slug in self.announced and user.username not in self.announced[slug]:
            return  # never announced (its connect was refused or timed out)
        if await self.room_id(slug) is None:
            return
        self.announced.get(slug, set()).discard(user.username)
        await publish.send_to_group(group, frame("user_leave", user=user.username, timestamp=now_iso()))
        self.online_list_soon(slug)

    async def frame_chat_message(self, cmd, data):
        slug = cmd["params"]["room"]
        room_id = await self.room_id(slug)
        if room_id is None:
            return await publish.send_error(cmd["conn"], ErrorCode.NOT_FOUND, "room no longer exists")
        message, created = await database_sync_to_async(store.post_message)(
            room_id, self.identity(cmd), data["message"], data.get("client_id")
        )
        text = frame("chat_message", **message.as_frame_fields())
        if created:
            metrics.CHAT_MESSAGES.labels("stored").inc()
            await publish.send_to_group(room_group(slug), text, seq=message.seq)
        else:
            # A resend of a stored message: its sender is answered directly. The room is
            # sent it again too, because a worker killed between storing and
            # broadcasting never sent it; the gateway drops it for every socket that
            # has that seq already (GwSend), so nobody sees it twice.
            metrics.CHAT_MESSAGES.labels("duplicate").inc()
            await publish.send_to_conn(cmd["conn"], text)
            await publish.send_to_group(room_group(slug), text, seq=message.seq, exclude_conn=cmd["conn"])

    async def frame_typing(self, cmd, data):
        user = self.identity(cmd)
        slug = cmd["params"]["room"]
        now = time.monotonic()
        throttle = env_float("TYPING_THROTTLE_SECONDS")
        key = (slug, user.id)
        if now - self.last_typing.get(key, -throttle) < throttle:
            return
        self.last_typing[key] = now
        if len(self.last_typing) > 10_000:  # forget notices older than the window
            self.last_typing = {k: t for k, t in self.last_typing.items() if now - t < throttle}
        await publish.send_to_group(room_group(slug), frame("user_typing", user=user.username), exclude_user=user.id)
