"""Chat's inbox worker: decides every chat socket's fate and stores every message.

Commands for one room arrive on one shard and are handled one at a time, so the
order in which messages are stored (their seq) is the order everyone sees. A
message is stored before it is broadcast; its echo, with seq and the client's
client_id, is the sender's acknowledgement.

Who is online is kept per room by the shard's worker (chat/online.py): a connect
costs the same in a room of 5,000 as in a room of 5, and a room's join and leave
notices and online list are coalesced into one flush per window.
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels.db import database_sync_to_async

from chat import store
from chat.online import Notices, RoomMembers, window
from switchboard import metrics, publish, routes
from switchboard.closecodes import CloseCode
from switchboard.config import env_float, env_int
from switchboard.errors import ErrorCode
from switchboard.inbox import InboxConsumer
from switchboard.presence import Member
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
        # Members of each room with a connection, as this shard knows them (online.py).
        self.members: dict[str, RoomMembers] = {}
        # Notices not sent yet per room, the rooms with a flush scheduled, the online
        # list version each room's sockets were last sent, and the flush tasks (kept so
        # they are not garbage collected mid-send).
        self.pending: dict[str, Notices] = {}
        self.flush_due: set[str] = set()
        self.sent_version: dict[str, int] = {}
        self.flush_tasks: set[asyncio.Future] = set()

    async def __call__(self, scope, receive, send):
        sweeper = asyncio.ensure_future(self.sweep_forever())
        try:
            await super().__call__(scope, receive, send)
        finally:
            sweeper.cancel()
            for task in self.flush_tasks:
                task.cancel()

    async def room_members(self, slug: str, group: str) -> RoomMembers:
        """The room's members, loaded from Redis presence the first time this worker
        touches the room (after a start or a handover of its shard)."""
        members = self.members.get(slug)
        if members is None:
            members = self.members[slug] = RoomMembers()
            for m in await presence().members(group):
                members.add(m.conn, m.user_id, m.username)
            # What the room's sockets were last sent is unknown: the next flush sends a list.
            self.sent_version.pop(slug, None)
        return members

    def notices_soon(self, slug: str) -> None:
        """Send the room's notices once its window has passed; every join and leave
        until then goes in the same flush."""
        if slug in self.flush_due:
            return
        self.flush_due.add(slug)
        members = self.members.get(slug)
        pending = self.pending.get(slug)
        size = (len(members.online_frame()) if members else 0) + (pending.size() if pending else 0)
        delay = window(
            env_float("ONLINE_USERS_COALESCE_SECONDS"),
            size,
            len(members.conns) if members else 0,
            env_int("PRESENCE_NOTICE_BYTES_PER_SECOND"),
        )

        def fire():
            task = asyncio.ensure_future(self.flush_notices(slug))
            self.flush_tasks.add(task)
            task.add_done_callback(self.flush_tasks.discard)

        asyncio.get_running_loop().call_later(delay, fire)

    async def flush_notices(self, slug: str) -> None:
        """The room's held joins and leaves, then its online list if it changed."""
        self.flush_due.discard(slug)
        pending = self.pending.pop(slug, None)
        members = self.members.get(slug)
        texts = pending.frames(now_iso()) if pending else []
        version = members.version if members else -1
        if members is not None and self.sent_version.get(slug) != version:
            texts.append(members.online_frame())
            self.sent_version[slug] = version
        if members is not None and not members.conns:
            # Nobody left to tell or to count: forget the room until its next connect.
            self.members.pop(slug, None)
            self.sent_version.pop(slug, None)
        group = room_group(slug)
        try:
            for text in texts:
                await publish.send_to_group(group, text)
        except Exception:
            log.exception("chat: presence notices of %s not sent", slug)

    def note(self, slug: str, joined: str | None = None, left: str | None = None) -> None:
        pending = self.pending.setdefault(slug, Notices())
        if joined is not None:
            pending.joined(joined)
        if left is not None:
            pending.left(left)
        self.notices_soon(slug)

    async def sweep_forever(self) -> None:
        interval = env_float("PRESENCE_HEARTBEAT_SECONDS")
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("chat presence sweep failed")

    async def sweep(self) -> None:
        """Drop connections whose gateway died without a disconnect (their presence
        expired), announcing users who had no other: one read per room per heartbeat."""
        for slug, members in list(self.members.items()):
            # Only connections added before the read can be judged by it: one a
            # connect added while the read was on its way is not in its answer.
            before = time.monotonic()
            alive = await presence().conns(room_group(slug))
            for conn in members.stale(alive, before):
                gone = members.remove(conn)
                if gone is not None:
                    self.note(slug, left=gone[1])
            if not members.conns:
                self.notices_soon(slug)

    async def room_id(self, slug: str) -> int | None:
        if slug not in self.rooms:
            room = await database_sync_to_async(store.get_room)(slug)
            if room is None:
                return None
            self.rooms[slug] = room.pk
        return self.rooms[slug]

    async def gw_connect(self, cmd):
        conn, slug = cmd["conn"], cmd["params"]["room"]
        since = cmd["params"].get("since")  # an int or absent: typed by the gateway (routes.toml)
        # One trip to the database thread: the room, its last seq and the history.
        found = await database_sync_to_async(store.connect_snapshot)(
            slug, since, env_int("HISTORY_LIMIT"), env_int("SINCE_MAX")
        )
        if found is None:
            return await publish.reject(conn, CloseCode.NOT_FOUND)
        room_id, messages, last_seq, truncated = found
        self.rooms[slug] = room_id
        group = room_group(slug)
        user = self.identity(cmd)
        if not await presence().has_member(group, Member(conn, user.id, user.username)):
            # The socket closed while this command waited (e.g. the worker was down
            # past the gateway's connect timeout): nobody to accept, nothing to announce.
            return
        members = await self.room_members(slug, group)
        members.add(conn, user.id, user.username)  # loaded from presence already, maybe
        # The user's only connection in the room: a join (another tab keeps them in).
        joined = members.per_user[user.id] == 1
        history = frame("history", messages=messages, last_seq=last_seq, truncated=truncated)
        await publish.accept(conn, [history, members.online_frame()], watermarks={group: last_seq})
        if joined:
            self.note(slug, joined=user.username)

    async def gw_disconnect(self, cmd):
        conn, slug = cmd["conn"], cmd["params"]["room"]
        if await self.room_id(slug) is None:
            return
        group = room_group(slug)
        user = self.identity(cmd)
        fresh = slug not in self.members
        members = await self.room_members(slug, group)
        if fresh:
            # Loaded just now (a restart or handover since its connect): the gateway
            # removed this socket's presence before telling us, so count it back in to
            # know whether it was the user's last.
            members.add(conn, user.id, user.username)
        gone = members.remove(conn)
        if gone is not None:
            self.note(slug, left=user.username)
        elif not members.conns:
            self.notices_soon(slug)

    async def frame_chat_message(self, cmd, data):
        slug = cmd["params"]["room"]
        if self.pending.get(slug):
            # "bob joined" before bob's first message, not after it.
            await self.flush_notices(slug)
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
            # A resend of a stored message (its sender saw no echo in time). The whole
            # room, sender included, is sent it again under its seq, because a worker
            # killed between storing and broadcasting never sent it; the gateway drops
            # it for every socket that has that seq already (GwSend). Answering the
            # sender directly, as this did until 2 Dec, bypassed that check: a sender
            # whose first echo arrived after it resent was shown the message twice.
            metrics.CHAT_MESSAGES.labels("duplicate").inc()
            await publish.send_to_group(room_group(slug), text, seq=message.seq)

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
