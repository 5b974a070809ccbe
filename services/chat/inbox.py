"""Chat's inbox worker: decides every chat socket's fate and stores every message.

Commands for one room arrive on one shard and are handled one at a time, so the
order in which messages are stored (their seq) is the order everyone sees. A
message is stored before it is broadcast; its echo, with seq and the client's
client_id, is the sender's acknowledgement.

Who is online is kept per room by the shard's worker (chat/online.py): a connect
costs the same in a room of 5,000 as in a room of 5, and a room's join and leave
notices and online list are coalesced into one flush per window. A storm's connects
(and disconnects) waiting together in a room's lane are handled as one step
(handle_batch): one presence check, one database trip and one online list for all of
them, each client still sent its own history in order.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from channels.db import database_sync_to_async

from chat import store
from chat.models import SYSTEM_USER_ID
from chat.online import Notices, RoomMembers, window
from switchboard import metrics, publish, redisconn, routes
from switchboard.closecodes import CloseCode
from switchboard.config import env_float, env_int
from switchboard.errors import ErrorCode
from switchboard.inbox import InboxConsumer
from switchboard.presence import Member
from switchboard.presence import shared as presence
from switchboard.protocol import frame, now_iso
from switchboard.tokens import Identity

log = logging.getLogger(__name__)


def room_group(slug: str) -> str:
    """The room's group, from the route table (the gateway joins the same one)."""
    route = next(r for r in routes.load().websocket if r.name == "chat")
    return route.group.format(room=slug)


class ChatInbox(InboxConsumer):
    service = "chat"
    commands = ("chat.system",)
    # A storm's connects (and the disconnects among them) into one room, one step each run.
    batch_types = frozenset({"gw.connect", "gw.disconnect"})

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
        await self.connect_run([cmd])

    async def handle_batch(self, cmds):
        """A lane's run of connects and disconnects of one room (batch_types): handled in
        their order, as one by one, but with one presence check and one database trip
        for all the connects and one online list encoded for their accepts."""
        await self.connect_run(cmds)

    async def connect_run(self, cmds: list[dict]) -> None:
        connects = [c for c in cmds if c["type"] == "gw.connect"]
        # Which sockets are still there, one ZMSCORE per room: one that closed while its
        # command waited (the gateway's connect timeout in a storm, or the worker was
        # down) has nobody to accept, nothing to announce and no history to read (in a
        # storm's retries, most of a room's connects).
        by_room: dict[str, list[dict]] = {}
        for cmd in connects:
            by_room.setdefault(cmd["params"]["room"], []).append(cmd)
        live: set[str] = set()
        for slug, room_cmds in by_room.items():
            members = [Member(c["conn"], c["user"]["id"], c["user"]["username"]) for c in room_cmds]
            for member, alive in zip(members, await presence().live(room_group(slug), members), strict=True):
                if alive:
                    live.add(member.conn)
        # One trip to the database thread per room: the room, its last seq and every
        # connect's history (sliced per `since`, an int or absent: typed by the gateway).
        wanted = {
            slug: [c["params"].get("since") for c in room_cmds if c["conn"] in live]
            for slug, room_cmds in by_room.items()
        }
        wanted = {slug: sinces for slug, sinces in wanted.items() if sinces}
        snapshots = await database_sync_to_async(self.snapshots)(wanted) if wanted else {}
        accepts: list[tuple[str, str, str | None]] = []  # (conn, room, joined) in order
        for cmd in cmds:
            if cmd["type"] == "gw.disconnect":
                await self.gw_disconnect(cmd)
                continue
            conn, slug = cmd["conn"], cmd["params"]["room"]
            if conn not in live:
                continue
            if snapshots.get(slug) is None:
                accepts.append((conn, "", None))  # no such room
                continue
            self.rooms[slug] = snapshots[slug][0]
            user = self.identity(cmd)
            members = await self.room_members(slug, room_group(slug))
            members.add(conn, user.id, user.username)  # loaded from presence already, maybe
            # The user's only connection in the room: a join (another tab keeps them in),
            # noted once the client is accepted.
            accepts.append((conn, slug, user.username if members.per_user[user.id] == 1 else None))
        # Each client its own history and the room's online list as the run left it;
        # one encoding per (room, since).
        histories: dict[tuple[str, int | None], str] = {}
        sinces = {c["conn"]: c["params"].get("since") for c in connects}
        for conn, slug, joined in accepts:
            if not slug:
                await publish.reject(conn, CloseCode.NOT_FOUND)
                continue
            _, last_seq, slices = snapshots[slug]
            since = sinces[conn]
            history = histories.get((slug, since))
            if history is None:
                messages, truncated = slices[since]
                history = histories[(slug, since)] = frame(
                    "history", messages=messages, last_seq=last_seq, truncated=truncated
                )
            group = room_group(slug)
            members = self.members.get(slug) or await self.room_members(slug, group)
            await publish.accept(conn, [history, members.online_frame()], watermarks={group: last_seq})
            if joined:
                self.note(slug, joined=joined)

    @staticmethod
    def snapshots(wanted: dict[str, list[int | None]]) -> dict[str, tuple | None]:
        limit, since_max = env_int("HISTORY_LIMIT"), env_int("SINCE_MAX")
        return {slug: store.connect_snapshot(slug, sinces, limit, since_max) for slug, sinces in wanted.items()}

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

    async def chat_system(self, cmd):
        """A system message from the shop's back end (chat/views.py system_messages):
        stored with the room's next seq on the room's shard, so it is ordered with the
        room's other messages, broadcast, then acknowledged to the waiting request."""
        slug = cmd["room"]
        room_id = await self.room_id(slug)
        if room_id is None:
            return await self.reply(cmd, {"ok": False, "error": "not_found"})
        if self.pending.get(slug):
            await self.flush_notices(slug)
        author = Identity(SYSTEM_USER_ID, cmd["user"])
        message, created = await database_sync_to_async(store.post_message)(
            room_id, author, cmd["message"], cmd["client_id"]
        )
        metrics.CHAT_MESSAGES.labels("stored" if created else "duplicate").inc()
        # A repeat too goes to the room under its seq: a worker killed between storing and
        # broadcasting never sent it; the gateway drops it where the seq arrived already.
        await publish.send_to_group(
            room_group(slug), frame("chat_message", **message.as_frame_fields()), seq=message.seq
        )
        await self.reply(cmd, {"ok": True, "message": message.as_frame_fields()})

    async def reply(self, cmd, answer: dict) -> None:
        # A client of its own: system messages are rare, and a client belongs to one loop.
        client = redisconn.client()
        key = cmd["reply_to"]
        try:
            async with client.pipeline(transaction=True) as pipe:
                await pipe.rpush(key, orjson.dumps(answer)).expire(key, 60).execute()
        finally:
            await client.aclose()

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
