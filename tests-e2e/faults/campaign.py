"""The fault campaign's load and its bookkeeping: one steady load of every case through
nginx, and one result row per fault and load.

Each load is a kind of participant, written the way a real client behaves:

* **chat**: one user per socket sends numbered messages with a `client_id`, keeps each
  unacknowledged until its own echo (with the room's `seq`) comes back, resends what
  is unacknowledged after a reconnect (with `?since=<last seq>`) or after ACK_TIMEOUT,
  and records every (seq, text) it sees. Acknowledged = echoed; lost = acknowledged
  but missing from a participant or from the store; duplicated = one text stored or
  seen under two seqs.
* **notifications**: staff pushes notifications through the service's REST path (the
  one other tests use); a push is acknowledged when the service answered 201 (stored).
  Each receiver (one socket per user) counts the pushes it is shown, and reads its
  unread list on every (re)connect (the web UI's bell reads it when opened). Lost =
  acknowledged but neither shown on the socket nor in a list read on reconnect (a tab
  that stayed open and missed a push); duplicated = one notification pushed twice to
  a socket, or one push stored twice (its title under two ids in the final list).
* **collab**: two Yjs editors (pycrdt, the y-websocket protocol) and one JSON editor
  (the seed's protocol) insert unique tokens into one document, at token boundaries
  (a Yjs editor at its end, the JSON editor at 0) so no token is ever split. A Yjs
  insert counts as acknowledged when made (the CRDT keeps it locally and delivers it
  with the next sync); a JSON edit when its `ack` arrives. After the load stops every
  client's text must equal the stored document (GET over REST): `converged`; lost =
  an acknowledged token not in it; duplicated = a token in it twice.
* **reports** (only where a fault needs them): the owner's /ws/tasks/ socket sees a
  report through to `completed`. Acknowledged = the 202 of the request; delivered = a
  `completed` frame on the socket; lost = never completed; duplicated = a completion
  shown twice.

Every row also says sockets dropped, and seconds from the fault until the load worked
again (chat: every participant had an acknowledgement for a message sent after the
fault; notifications: every receiver was shown a push stored after it; collab: every
editor's newest edit after it had reached every client; reports: all completed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import websockets
from accounting import Ledger
from collabclients import JsonClient, YClient
from wsclient import Client

from switchboard.tokens import Identity, issue

# `make faults` (SWITCHBOARD_FAULTS=all) runs every row and the slow checks; `make test`
# the fast ones.
FULL = os.environ.get("SWITCHBOARD_FAULTS") == "all"

SEND_INTERVAL = 0.25  # per chat participant; three of them stay well under the user rate
ACK_TIMEOUT = 4.0  # an inbox worker killed after taking a command loses it: resend
PUSH_INTERVAL = 0.4  # one staff notification, alternating receivers
EDIT_INTERVAL = 0.3  # per editor: a steady typist, well under collab's rate
RECOVER_WITHIN = 90.0
SETTLE_WITHIN = 60.0
DROPPED = (websockets.ConnectionClosed, OSError, websockets.InvalidHandshake, TimeoutError)


@dataclass
class Row:
    # Positional order kept: other tests of the campaign build chat rows positionally.
    fault: str
    sent: int = 0
    acknowledged: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    sockets_dropped: int = 0
    seconds_to_recover: float = 0.0
    load: str = "chat"
    converged: str = ""  # collab: "yes" / "no"
    note: str = ""
    # chat: two participants shown different messages under one seq, or one sender's
    # acknowledged messages stored out of the order it sent them; and every load: a
    # socket's live frames of one stream out of (seq, part) order (accounting.Ledger).
    order_violations: int = 0
    # the scale test: seconds from the fault until every inbox shard had an owner again
    seconds_to_owned: float | None = None
    leaked: int = 0  # frames a socket was not meant to get (accounting.Ledger)


def auth(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


class Load:
    """One kind of participant. run_fault calls, in order: setup, runners (started as
    tasks), ready, mark (right after the fault), recovered (polled), settle (after the
    senders stop, runners still running), result (after the runners ended)."""

    name = ""

    def __init__(self, fleet, tokens):
        self.fleet, self.tokens = fleet, tokens
        self.ledger = Ledger()  # every frame each of this load's sockets was shown

    async def setup(self) -> None:
        pass

    def runners(self, sending: asyncio.Event, stop: asyncio.Event) -> list:
        return []

    async def ready(self) -> None:
        pass

    def mark(self) -> None:
        pass

    def recovered(self) -> bool:
        return True

    async def settle(self, deadline: float) -> None:
        pass

    async def result(self, row: Row) -> Row:
        return self.account(row)

    def account(self, row: Row) -> Row:
        """Add the ledger's duplicates, leaks and order violations to the row."""
        row.duplicated += self.ledger.duplicated
        row.leaked += self.ledger.leaked
        row.order_violations += len(self.ledger.order_violations)
        row.note = "; ".join(x for x in (row.note, self.ledger.summary()) if x)
        return row


# ------------------------------------------------------------------ chat ----
class Participant:
    """One chat user's socket. Its texts are `<room>/<user>:<n>`, so a message of
    another room is recognised as a leak."""

    def __init__(
        self, fleet, room: str, user: str, tok: str, ledger: Ledger | None = None, *, talks=True, interval=None
    ):
        self.fleet, self.room, self.user, self.tok = fleet, room, user, tok
        self.ledger = ledger if ledger is not None else Ledger()
        self.talks, self.interval = talks, SEND_INTERVAL if interval is None else interval
        self.name = f"chat:{room}:{user}"
        self.seen: dict[int, str] = {}  # seq -> text
        self.seen_twice: set[str] = set()  # a text seen under two seqs
        self.unacked: dict[str, tuple[str, float]] = {}  # client_id -> (text, sent at)
        self.acked: dict[str, int] = {}  # text -> seq
        self.resent: set[str] = set()  # texts sent more than once (unacknowledged in time)
        self.sent = 0
        self.drops = 0
        self.last_seq = 0
        self.connected = asyncio.Event()
        self.client: Client | None = None

    def record(self, seq: int, text: str, *, live: bool) -> None:
        if not text.startswith(f"{self.room}/"):
            self.ledger.leak(self.name, f"{text} on {self.room}")
            return
        if live:
            self.ledger.live(self.name, self.room, seq)
        else:
            self.ledger.history(self.name, self.room, seq)
        if self.seen.get(seq, text) != text:
            self.seen_twice.add(text)  # one seq, two texts: the store's order is broken
        if seq not in self.seen and text in self.seen.values():
            self.seen_twice.add(text)  # one text under two seqs: stored twice
        self.seen[seq] = text
        self.last_seq = max(self.last_seq, seq)

    async def run(self, sending: asyncio.Event, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                url = f"{self.fleet.ws_url}/ws/chat/{self.room}/" + (f"?since={self.last_seq}" if self.last_seq else "")
                self.client = await Client.connect(url, self.tok)
            except (OSError, websockets.InvalidHandshake, TimeoutError):
                await asyncio.sleep(0.3)
                continue
            self.ledger.connected(self.name)
            try:
                await self._session(sending, stop)
            except (websockets.ConnectionClosed, OSError):
                self.drops += 1
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await self.client.close()
            await asyncio.sleep(0.2)

    async def _session(self, sending: asyncio.Event, stop: asyncio.Event) -> None:
        reader = asyncio.ensure_future(self._read())
        try:
            first = True
            while not stop.is_set():
                if reader.done():
                    reader.result()  # raises ConnectionClosed
                    return
                if first and self.connected.is_set():
                    first = False
                    for cid, (text, _) in list(self.unacked.items()):  # resend after reconnect
                        await self._send(cid, text)
                now = time.monotonic()
                for cid, (text, at) in list(self.unacked.items()):
                    if now - at > ACK_TIMEOUT and self.connected.is_set():
                        await self._send(cid, text)
                if self.talks and sending.is_set() and self.connected.is_set():
                    self.sent += 1
                    await self._send(uuid.uuid4().hex[:16], f"{self.room}/{self.user}:{self.sent}")
                await asyncio.sleep(self.interval)
        finally:
            if not reader.done():
                reader.cancel()
            with contextlib.suppress(BaseException):
                await reader  # its ConnectionClosed, retrieved (or re-raised above)
            await self.client.close()

    async def _send(self, cid: str, text: str) -> None:
        if cid in self.unacked:
            self.resent.add(text)
        self.unacked[cid] = (text, time.monotonic())
        await self.client.send({"type": "chat_message", "message": text, "client_id": cid})

    async def _read(self) -> None:
        while True:
            raw = await self.client.ws.recv()
            frame = json.loads(raw)
            if frame["type"] == "history":
                for m in frame["messages"]:
                    self.record(m["seq"], m["message"], live=False)
                self.connected.set()
            elif frame["type"] == "chat_message":
                self.record(frame["seq"], frame["message"], live=True)
                cid = frame.get("client_id")
                if frame.get("user") == self.user and cid in self.unacked:
                    text, _ = self.unacked.pop(cid)
                    self.acked[text] = frame["seq"]


def stored(fleet, room: str, tok: str) -> list[dict]:
    """Every message of the room, from the REST API, paged."""
    out: list[dict] = []
    after = 0
    while True:
        res = httpx.get(
            f"{fleet.url}/api/chat/rooms/{room}/messages/",
            params={"after": after, "limit": 100},
            headers=auth(tok),
            timeout=10,
        )
        res.raise_for_status()
        page = res.json()["messages"]
        if not page:
            return out
        out += page
        after = page[-1]["seq"]


def crowd_token(n: int) -> str:
    """A token for listener number n of the crowd (users that exist only in tokens: chat
    rooms are open to any signed-in user)."""
    return issue(Identity(100_000 + n, f"crowd{n}"))


class ChatLoad(Load):
    """`rooms` rooms, each with three talkers and `listeners` sockets that only read."""

    name = "chat"
    users = ("alice", "bob", "admin")

    def __init__(self, fleet, tokens, rooms: int = 1, listeners: int = 0):
        super().__init__(fleet, tokens)
        self.n_rooms, self.n_listeners = rooms, listeners

    async def setup(self) -> None:
        self.rooms: list[str] = []
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(self.n_rooms):
                res = await http.post(
                    f"{self.fleet.url}/api/chat/rooms/",
                    json={"name": "f" + uuid.uuid4().hex[:10]},
                    headers=auth(self.tokens["alice"]),
                )
                res.raise_for_status()
                self.rooms.append(res.json().get("slug") or res.json()["name"])
        self.room = self.rooms[0]  # the reports' room
        # Talkers keep the user rate of each under its limit across the rooms.
        interval = SEND_INTERVAL * self.n_rooms
        self.people = [
            Participant(self.fleet, room, u, self.tokens[u], self.ledger, interval=interval)
            for room in self.rooms
            for u in self.users
        ]
        self.listeners = [
            Participant(self.fleet, room, f"crowd{n}", crowd_token(n), self.ledger, talks=False)
            for i, room in enumerate(self.rooms)
            for n in range(i * self.n_listeners, (i + 1) * self.n_listeners)
        ]

    @property
    def sockets(self) -> list[Participant]:
        return self.people + self.listeners

    def runners(self, sending, stop):
        return [p.run(sending, stop) for p in self.sockets]

    async def ready(self) -> None:
        await asyncio.gather(*(p.connected.wait() for p in self.sockets))

    def mark(self) -> None:
        self.marks = {p.name: p.sent for p in self.people}
        self.seq_marks = {
            room: max((p.last_seq for p in self.sockets if p.room == room), default=0) for room in self.rooms
        }

    def recovered(self) -> bool:
        talked = all(any(int(t.rsplit(":", 1)[1]) > self.marks[p.name] for t in p.acked) for p in self.people)
        return talked and all(p.last_seq > self.seq_marks[p.room] for p in self.listeners)

    async def settle(self, deadline: float) -> None:
        while time.monotonic() < deadline and any(p.unacked for p in self.people):
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # the last broadcasts reach everyone

    async def result(self, row: Row) -> Row:
        row.sent = sum(p.sent for p in self.people)
        for room in self.rooms:
            members = [p for p in self.sockets if p.room == room]
            talkers = [p for p in self.people if p.room == room]
            store = await asyncio.to_thread(stored, self.fleet, room, self.tokens["alice"])
            texts = [m["message"] for m in store]
            acked = {t for p in talkers for t in p.acked}
            row.acknowledged += len(acked)
            seen_by_all = set.intersection(*(set(p.seen.values()) for p in members))
            row.delivered += len(acked & seen_by_all)
            row.lost += len(acked - (seen_by_all & set(texts)))
            row.duplicated += (len(texts) - len(set(texts))) + sum(len(p.seen_twice) for p in members)
            row.order_violations += order_violations(members)
        row.sockets_dropped = sum(p.drops for p in self.sockets)
        return self.account(row)


def order_violations(people: list[Participant]) -> int:
    """Seqs two participants saw with different texts, plus, per sender, consecutive
    acknowledged messages (by the number it gave them) stored in the other order. Only
    messages sent once count for the second: a resent one (unacknowledged in time,
    refused by a rate limit, lost with a crashed worker) was sent again after later
    ones, so storing it after them keeps the order the server received them in."""
    count = 0
    shown: dict[int, str] = {}
    for p in people:
        for seq, text in p.seen.items():
            if shown.setdefault(seq, text) != text:
                count += 1
    for p in people:
        once = sorted((int(text.split(":")[1]), seq) for text, seq in p.acked.items() if text not in p.resent)
        count += sum(1 for (_, a), (_, b) in zip(once, once[1:], strict=False) if b < a)
    return count


async def listen(url: str, tok: str, read, stop: asyncio.Event, holder) -> None:
    """One socket that only listens, kept as a browser tab keeps it: (re)connect until
    `stop`; `read(client)` consumes it until it closes. A close before `stop` counts in
    `holder.drops`, and `holder.connected` is cleared while no socket is open. A reader
    that fails for any other reason than its socket closing fails the row: a crashed
    reader is not a dropped socket."""
    while not stop.is_set():
        try:
            client = await Client.connect(url, tok)
        except (OSError, websockets.InvalidHandshake, TimeoutError):
            await asyncio.sleep(0.3)
            continue
        holder.ledger.connected(holder.name)
        reader = asyncio.ensure_future(read(client))
        try:
            while not (stop.is_set() or reader.done()):
                await asyncio.sleep(0.1)
            if reader.done() and not stop.is_set():
                if not isinstance(reader.exception(), (type(None), *DROPPED)):
                    reader.result()  # raises what crashed the reader
                holder.drops += 1
        finally:
            holder.connected.clear()
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            with contextlib.suppress(Exception):
                await client.close()
        await asyncio.sleep(0.2)


# --------------------------------------------------------- notifications ----
class Receiver:
    """One user's notification socket, as a browser tab keeps it. A push's title names
    its recipient (`<tag><user>:<n>`): one shown to anyone else is a leak."""

    def __init__(self, load: NotificationLoad, user: str, tab: int = 0):
        self.load, self.user, self.tok = load, user, load.tokens[user]
        self.ledger, self.name = load.ledger, f"notifications:{user}#{tab}"
        self.on_socket: set[int] = set()
        self.in_list: dict[int, str] = {}  # id -> title, read on (re)connects
        self.at_end: dict[int, str] = {}  # id -> title, read after the load
        self.drops = 0
        self.connected = asyncio.Event()

    async def run(self, sending: asyncio.Event, stop: asyncio.Event) -> None:
        await listen(f"{self.load.fleet.ws_url}/ws/notifications/", self.tok, self._read, stop, self)

    async def _read(self, client: Client) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                frame = json.loads(await client.ws.recv())
                if frame["type"] == "unread_count" and not self.connected.is_set():
                    # The socket is in the user's group now: what it missed is in the list.
                    for _ in range(40):  # the service may be down itself (PostgreSQL)
                        try:
                            await self.read_list(self.in_list)
                            break
                        except httpx.HTTPError:
                            await asyncio.sleep(0.5)
                    self.connected.set()
                elif frame["type"] == "notification" and frame["title"].startswith(self.load.tag):
                    if not self.mine(frame["title"]):
                        self.ledger.leak(self.name, frame["title"])
                        continue
                    # Ids of one user's pushes need not arrive in order (two pushers).
                    self.ledger.live(self.name, self.name, frame["id"], ordered=False)
                    self.on_socket.add(frame["id"])

    def mine(self, title: str) -> bool:
        return title.startswith(f"{self.load.tag}{self.user}:")

    async def read_list(self, into: dict[int, str]) -> None:
        """The unread list, newest first, back to the first push of this row."""
        floor = self.load.floor
        async with httpx.AsyncClient(timeout=10) as http:
            offset = 0
            while True:
                res = await http.get(
                    f"{self.load.fleet.url}/api/notifications/",
                    params={"unread": 1, "limit": 100, "offset": offset},
                    headers=auth(self.tok),
                )
                res.raise_for_status()
                page = res.json()["notifications"]
                ours = [n for n in page if n["title"].startswith(self.load.tag)]
                for n in ours:
                    if not self.mine(n["title"]):
                        self.ledger.leak(self.name, f"{n['title']} in the unread list")
                into.update({n["id"]: n["title"] for n in ours if self.mine(n["title"])})
                if floor is None or not page or min(n["id"] for n in page) < floor:
                    return
                offset += len(page)


class NotificationLoad(Load):
    """Staff pushes to `users` in turn; each has `tabs` sockets, every one of which must
    be shown each of its user's pushes (live, or in the list read on reconnect)."""

    name = "notifications"

    def __init__(self, fleet, tokens, users=("alice", "bob"), tabs: int = 1):
        super().__init__(fleet, tokens)
        self.users, self.tabs = users, tabs

    async def setup(self) -> None:
        self.tag = "n" + uuid.uuid4().hex[:8] + ":"
        self.floor: int | None = None  # the first acknowledged id: older ones are not ours
        self.sent = 0
        self.acked: dict[int, str] = {}  # id -> user
        self.order: list[tuple[int, int]] = []  # (push number, id), acknowledged ones
        self.titles: dict[int, str] = {}
        self.receivers = [Receiver(self, u, tab) for u in self.users for tab in range(self.tabs)]

    def runners(self, sending, stop):
        return [r.run(sending, stop) for r in self.receivers] + [self._push(sending, stop)]

    async def _push(self, sending: asyncio.Event, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            while not stop.is_set():
                if not sending.is_set():
                    await asyncio.sleep(0.1)
                    continue
                user = self.users[self.sent % len(self.users)]
                self.sent += 1
                title = f"{self.tag}{user}:{self.sent}"
                try:
                    res = await http.post(
                        f"{self.fleet.url}/api/notifications/",
                        json={"user": user, "title": title, "message": "campaign"},
                        headers=auth(self.tokens["admin"]),
                    )
                    if res.status_code == 201:
                        nid = res.json()["id"]
                        self.floor = nid if self.floor is None else min(self.floor, nid)
                        self.acked[nid] = user
                        self.titles[nid] = title
                        self.order.append((self.sent, nid))
                except httpx.HTTPError:
                    pass  # not acknowledged: the pusher does not know whether it was stored
                await asyncio.sleep(PUSH_INTERVAL)

    async def ready(self) -> None:
        await asyncio.gather(*(r.connected.wait() for r in self.receivers))

    def mark(self) -> None:
        self.mark_at = self.sent

    def recovered(self) -> bool:
        return all(any(n > self.mark_at and nid in r.on_socket for n, nid in self.order) for r in self.receivers)

    def _missing(self) -> list[tuple[str, int]]:
        return [(r.name, nid) for r in self.receivers for nid in self._for(r) if nid not in r.on_socket]

    def _for(self, r: Receiver) -> list[int]:
        """The acknowledged pushes receiver `r` must be shown."""
        return [nid for nid, user in self.acked.items() if user == r.user]

    async def settle(self, deadline: float) -> None:
        deadline = min(deadline, time.monotonic() + 10)  # the rest was missed (or listed)
        while time.monotonic() < deadline and self._missing():
            await asyncio.sleep(0.2)

    async def result(self, row: Row) -> Row:
        for r in self.receivers:  # what is stored: not a delivery, a check
            await r.read_list(r.at_end)
        row.sent, row.acknowledged = self.sent, len(self.acked)
        # Delivered: shown to every tab of its user, live or in the list on reconnect.
        shown = {
            nid for nid in self.acked if all(nid in r.on_socket for r in self.receivers if r.user == self.acked[nid])
        }
        listed = {
            nid
            for nid in self.acked
            if all(nid in r.on_socket or nid in r.in_list for r in self.receivers if r.user == self.acked[nid])
        }
        row.delivered = len(listed)
        row.lost = len(self.acked) - row.delivered
        titles = list(self.titles.values())
        row.duplicated = len(titles) - len(set(titles))
        # A push stored twice shows its title under two ids in the list.
        for r in self.receivers:
            listed_titles = list(r.at_end.values())
            row.duplicated += len(listed_titles) - len(set(listed_titles))
        row.sockets_dropped = sum(r.drops for r in self.receivers)
        only_listed = len(listed - shown)
        if only_listed:
            row.note += f"{only_listed} not pushed live, shown by the unread list on reconnect"
        # Stored although the pusher got no 201: a pusher that retried would store it twice.
        unacked = len({nid for r in self.receivers for nid in r.at_end} - set(self.acked))
        if unacked:
            row.note += f"{'; ' if row.note else ''}{unacked} stored without a 201"
        return self.account(row)


# ----------------------------------------------------------------- collab ----
# <document id><editor letter><number>: a token of another document is a leak.
TOKEN = re.compile(r"<(\d+)([A-Z])(\d+)>")


class Editor:
    """One editor: `kind` "yjs" (inserts at its end, offline too) or "json" (inserts at
    0 while connected, acknowledged by `ack`; an edit unacknowledged after a reconnect
    or ACK_TIMEOUT is sent again with its client_id, which collab stores once)."""

    def __init__(self, load: CollabLoad, doc_id: int, letter: str, user: str, kind: str, writes: bool = True):
        self.load, self.doc_id, self.letter, self.kind, self.writes = load, doc_id, letter, kind, writes
        self.name = f"collab:{doc_id}:{letter}"
        url = f"{load.fleet.ws_url}/ws/collab/{doc_id}/"
        self.client = YClient(url, load.tokens[user], letter) if kind == "yjs" else JsonClient(url, load.tokens[user])
        self.made = 0
        self.acked: list[int] = []  # token numbers
        self.unacked: dict[str, float] = {}  # json: client_id (its token) -> sent at
        self.drops = 0
        self.up = False
        self.connected = asyncio.Event()

    def token(self, n: int) -> str:
        return f"<{self.doc_id}{self.letter}{n}>"

    @property
    def value(self) -> str:
        return self.client.value

    def is_up(self) -> bool:
        if self.kind == "yjs":
            return self.client.ws is not None and self.client.synced.is_set()
        return self.client.ws is not None and self.client.ready.is_set() and not self.client.reader.done()

    async def _connect(self) -> None:
        try:
            await self.client.connect()
            if self.kind == "yjs":
                await self.client.wait_synced(10)
        except (*DROPPED, AssertionError):
            with contextlib.suppress(Exception):
                await (self.client.disconnect() if self.kind == "yjs" else self.client.close())
            await asyncio.sleep(0.3)

    async def run(self, sending: asyncio.Event, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                if not self.is_up():
                    if self.up:
                        self.drops += 1
                    self.up = False
                    self.connected.clear()
                    if self.writes and self.kind == "yjs" and self.client.ws is None and sending.is_set():
                        self._insert()  # typing offline: the next sync delivers it
                    await self._connect()
                    continue
                if self.kind == "json":
                    await self._json_resend(everything=not self.up)
                self.up = True
                self.connected.set()
                if sending.is_set() and self.writes:
                    if self.kind == "yjs":
                        self._insert()
                    else:
                        await self._json_insert()
                await asyncio.sleep(EDIT_INTERVAL)
        finally:
            with contextlib.suppress(Exception):
                await (self.client.disconnect() if self.kind == "yjs" else self.client.close())

    def _insert(self) -> None:
        self.made += 1
        self.client.insert(len(self.client.value), self.token(self.made))
        self.acked.append(self.made)  # in the local CRDT: it is delivered by a sync at the latest

    async def _json_insert(self) -> None:
        self.made += 1
        await self._json_send(self.token(self.made))

    async def _json_send(self, token: str) -> None:
        self.unacked[token] = time.monotonic()
        try:
            await self.client.edit("insert", 0, token, cid=token)
        except websockets.ConnectionClosed:
            pass

    async def _json_resend(self, everything: bool) -> None:
        now = time.monotonic()
        for token, at in list(self.unacked.items()):
            if token in self.client.acks:
                del self.unacked[token]
            elif everything or now - at > ACK_TIMEOUT:
                await self._json_send(token)

    def acknowledged(self) -> list[int]:
        if self.kind == "json":
            return sorted(int(TOKEN.fullmatch(cid).group(3)) for cid in self.client.acks)
        return self.acked

    def account(self, ledger: Ledger) -> None:
        """A JSON editor's edit frames, per connection (each starts with its
        document_content), counted by (seq, the edit): a document's seq is one stored
        update, its edits the parts. A token of another document is a leak."""
        name = self.name
        for data in self.client.frames if self.kind == "json" else []:
            if data["type"] == "document_content":
                ledger.connected(name)
            elif data["type"] == "edit":
                edit = {k: v for k, v in data.items() if k not in ("seq", "user", "type")}
                ledger.live(name, str(self.doc_id), data["seq"], json.dumps(edit, sort_keys=True))
        for doc, letter, n in TOKEN.findall(self.value):
            if int(doc) != self.doc_id:
                ledger.leak(name, f"<{doc}{letter}{n}> in document {self.doc_id}")


class CollabLoad(Load):
    """`docs` documents (alice's, shared with bob), each with two Yjs editors and one
    JSON editor, and `readers` sockets that only read (alternately JSON and Yjs)."""

    name = "collab"

    def __init__(self, fleet, tokens, docs: int = 1, readers: int = 0):
        super().__init__(fleet, tokens)
        self.n_docs, self.n_readers = docs, readers

    async def setup(self) -> None:
        self.doc_ids: list[int] = []
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(self.n_docs):
                res = await http.post(
                    f"{self.fleet.url}/api/collab/documents/",
                    json={"title": "f" + uuid.uuid4().hex[:8], "content": ""},
                    headers=auth(self.tokens["alice"]),
                )
                res.raise_for_status()
                doc_id = res.json()["id"]
                res = await http.post(
                    f"{self.fleet.url}/api/collab/documents/{doc_id}/share/",
                    json={"username": "bob", "role": "edit"},
                    headers=auth(self.tokens["alice"]),
                )
                res.raise_for_status()
                self.doc_ids.append(doc_id)
        self.editors: list[Editor] = []
        for doc_id in self.doc_ids:
            self.editors += [
                Editor(self, doc_id, "A", "alice", "yjs"),
                Editor(self, doc_id, "B", "bob", "yjs"),
                Editor(self, doc_id, "J", "bob", "json"),
            ]
            for i in range(self.n_readers):
                kind = "json" if i % 2 == 0 else "yjs"
                self.editors.append(Editor(self, doc_id, f"R{i}", ("alice", "bob")[i % 2], kind, writes=False))
        self.server = {doc_id: "" for doc_id in self.doc_ids}
        self.converged = False  # decided in settle, while every editor is still connected

    @property
    def writers(self) -> list[Editor]:
        return [e for e in self.editors if e.writes]

    def runners(self, sending, stop):
        return [e.run(sending, stop) for e in self.editors]

    async def ready(self) -> None:
        await asyncio.gather(*(e.connected.wait() for e in self.editors))

    def mark(self) -> None:
        self.marks = {e.name: e.made for e in self.writers}

    def recovered(self) -> bool:
        for doc_id in self.doc_ids:
            values = [e.value for e in self.editors if e.doc_id == doc_id]
            for e in self.writers:
                if e.doc_id != doc_id:
                    continue
                newer = [n for n in e.acknowledged() if n > self.marks[e.name]]
                if not any(all(e.token(n) in v for v in values) for n in newer[-3:]):
                    return False
        return True

    async def _server(self, doc_id: int) -> str:
        async with httpx.AsyncClient(timeout=10) as http:
            res = await http.get(f"{self.fleet.url}/api/collab/documents/{doc_id}/", headers=auth(self.tokens["alice"]))
        res.raise_for_status()
        return res.json()["content"]

    def _converged(self) -> bool:
        acked = all(set(e.unacked) <= set(e.client.acks) for e in self.writers if e.kind == "json")
        return acked and all(e.is_up() and e.value == self.server[e.doc_id] for e in self.editors)

    async def settle(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                for doc_id in self.doc_ids:
                    self.server[doc_id] = await self._server(doc_id)
            if self._converged():
                self.converged = True
                return
            await asyncio.sleep(0.3)

    async def result(self, row: Row) -> Row:
        row.converged = "yes" if self.converged else "no"
        for e in self.editors:
            e.account(self.ledger)
        for doc_id in self.doc_ids:
            text = self.server[doc_id]
            editors = [e for e in self.editors if e.doc_id == doc_id]
            acked = [e.token(n) for e in editors for n in e.acknowledged()]
            in_doc = TOKEN.findall(text)
            row.acknowledged += len(acked)
            row.delivered += sum(1 for t in acked if t in text and all(t in e.value for e in editors))
            lost = [t for t in acked if t not in text]
            row.lost += len(lost)
            row.duplicated += len(in_doc) - len(set(in_doc))
            if lost:  # which editor (A, B: Yjs; J: JSON) and which of its edits, for a post-mortem
                row.note += f"lost {' '.join(lost[:10])} of {[(e.letter, e.made) for e in editors if e.writes]}; "
            differ = [e.name for e in editors if e.value != text]
            if differ:
                row.note += f"document {doc_id}: server {len(text)} chars, {differ[:5]} differ; "
        row.sent = sum(e.made for e in self.editors)
        row.sockets_dropped = sum(e.drops for e in self.editors)
        return self.account(row)


# ----------------------------------------------------------------- reports ----
class Bystander:
    """A socket of a user who asked for nothing on a route: every frame of one of its
    streams it is shown is a leak."""

    def __init__(self, load: Load, user: str, path: str, leaks_if):
        self.load, self.user, self.path, self.leaks_if = load, user, path, leaks_if
        self.ledger, self.name = load.ledger, f"bystander:{user}{path}"
        self.drops = 0
        self.connected = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        await listen(f"{self.load.fleet.ws_url}{self.path}", self.load.tokens[self.user], self._read, stop, self)

    async def _read(self, client: Client) -> None:
        self.connected.set()
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                frame = json.loads(await client.ws.recv())
                if self.leaks_if(frame):
                    self.ledger.leak(self.name, json.dumps(frame)[:120])


class ReportLoad(Load):
    """Reports of the chat load's room, followed on alice's /ws/tasks/ socket, while
    bob's /ws/tasks/ socket must be shown none of them. The fault calls `request` (and
    waits for `running`) before it strikes."""

    name = "reports"
    count = 3

    def __init__(self, fleet, tokens, chat: ChatLoad):
        super().__init__(fleet, tokens)
        self.chat = chat
        self.task_ids: list[str] = []
        self.frames: dict[str, list[dict]] = {}
        self.running = asyncio.Event()
        self.connected = asyncio.Event()
        self.name = "tasks:alice"
        self.connected_once = False
        self.listed: set[str] = set()  # completed, as read over REST on a reconnect
        self.sent = 0
        self.drops = 0
        self.bob = Bystander(self, "bob", "/ws/tasks/", lambda f: f.get("task_id") in self.task_ids)

    def runners(self, sending, stop):
        return [self._follow(stop), self.bob.run(stop)]

    async def _follow(self, stop: asyncio.Event) -> None:
        await listen(f"{self.fleet.ws_url}/ws/tasks/", self.tokens["alice"], self._read, stop, self)

    async def _read(self, client: Client) -> None:
        # As the reports page does: on every (re)connect, read the reports' state over
        # REST, so one that moved while the socket was down shows its real state.
        if self.connected_once:
            await self._read_states()
        self.connected_once = True
        self.connected.set()
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                frame = json.loads(await client.ws.recv())
                if frame["type"] == "task_update":
                    self.frames.setdefault(frame["task_id"], []).append(frame)
                    if frame["status"] == "completed":
                        self.ledger.live(self.name, frame["task_id"], 0, "completed", ordered=False)
                    if frame["status"] == "progress":
                        self.running.set()

    async def ready(self) -> None:
        await self.connected.wait()
        await self.bob.connected.wait()

    async def request(self) -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(self.count):
                self.sent += 1
                res = await http.post(
                    f"{self.fleet.url}/api/reports/",
                    json={"type": "chat_transcript", "room": self.chat.room},
                    headers=auth(self.tokens["alice"]),
                )
                if res.status_code == 202:
                    self.task_ids.append(res.json()["task_id"])
        await asyncio.wait_for(self.running.wait(), 60)

    async def _read_states(self) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            for t in list(self.task_ids):
                for _ in range(40):  # the service may be down itself
                    try:
                        res = await http.get(f"{self.fleet.url}/api/reports/{t}/", headers=auth(self.tokens["alice"]))
                        res.raise_for_status()
                        break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.5)
                else:
                    continue
                if res.json().get("status") == "completed":
                    self.ledger.history(self.name, t, 0, "completed")
                    self.listed.add(t)

    def _completions(self, task_id: str) -> int:
        return sum(1 for f in self.frames.get(task_id, []) if f["status"] == "completed")

    def _shown(self, task_id: str) -> bool:
        return bool(self._completions(task_id)) or task_id in self.listed

    def recovered(self) -> bool:
        return all(self._shown(t) for t in self.task_ids)

    async def settle(self, deadline: float) -> None:
        while time.monotonic() < deadline and not self.recovered():
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # a second completion would arrive now

    async def result(self, row: Row) -> Row:
        attempts = []
        async with httpx.AsyncClient(timeout=30) as http:
            for t in self.task_ids:
                res = await http.get(f"{self.fleet.url}/api/reports/{t}/", headers=auth(self.tokens["alice"]))
                status = res.json()
                attempts.append(status.get("attempts", 0))
                if status.get("status") != "completed":
                    row.lost += 1
        row.sent, row.acknowledged = self.sent, len(self.task_ids)
        row.delivered = sum(1 for t in self.task_ids if self._shown(t))
        only_listed = sum(1 for t in self.task_ids if not self._completions(t) and t in self.listed)
        if only_listed:
            row.note += f"{only_listed} completed while the socket was down, shown by the read on reconnect"
        row.lost = max(row.lost, row.acknowledged - row.delivered)
        self.attempts = attempts  # the Celery row's evidence that its kill struck
        row.sockets_dropped = self.drops
        row.note = "; ".join(x for x in (row.note, f"runs per report: {attempts}") if x)
        return self.account(row)  # a completion shown twice is a duplicate there


LOADS = ("chat", "notifications", "collab")


@dataclass(frozen=True)
class Scale:
    """How many sockets each load holds through nginx while a fault strikes."""

    rooms: int
    listeners: int  # per room, besides its three talkers
    tabs: int  # notification sockets per user (alice, bob, admin)
    docs: int
    readers: int  # per document, besides its three editors

    @property
    def sockets(self) -> int:
        return self.rooms * (3 + self.listeners) + 3 * self.tabs + self.docs * (3 + self.readers)


# `make faults`: 500 sockets across rooms, documents and notification streams (a
# gateway kill is a reconnect storm of the half on the victim); `make test`: every row
# once at a reduced load. FAULTS_SCALE=full|reduced chooses either way.
SCALES = {
    "full": Scale(rooms=6, listeners=50, tabs=30, docs=4, readers=20),
    "reduced": Scale(rooms=2, listeners=5, tabs=3, docs=2, readers=4),
}
SCALE = SCALES[os.environ.get("FAULTS_SCALE") or ("full" if FULL else "reduced")]


def make_loads(fleet, tokens, names, scale: Scale | None = None) -> dict[str, Load]:
    """One load per name; "chat#2" is a second chat load (its own room); a Load instance
    given instead of a name is taken as it is. `scale` None: one room, one document,
    one notification tab per user (the scale test's loads); else its sizes."""
    loads: dict[str, Load] = {}
    for name in names:
        kind = name.name if isinstance(name, Load) else name.split("#")[0]
        if isinstance(name, Load):
            loads[name.name] = name
        elif kind == "chat":
            loads[name] = ChatLoad(fleet, tokens, scale.rooms, scale.listeners) if scale else ChatLoad(fleet, tokens)
        elif kind == "notifications":
            loads[name] = (
                NotificationLoad(fleet, tokens, ("alice", "bob", "admin"), scale.tabs)
                if scale
                else NotificationLoad(fleet, tokens)
            )
        elif kind == "collab":
            loads[name] = CollabLoad(fleet, tokens, scale.docs, scale.readers) if scale else CollabLoad(fleet, tokens)
        elif kind == "reports":
            loads[name] = ReportLoad(fleet, tokens, loads["chat"])
        else:
            raise ValueError(name)
    return loads


async def run_fault(fleet, tokens, fault: str, inject, *, loads=LOADS, warmup=2.0, scale=None) -> list[Row]:
    """Start every load (at `scale`, see make_loads), `await inject(loads)`, measure
    until each recovered, settle, and return one row per load."""
    active = make_loads(fleet, tokens, loads, scale)
    for load in active.values():
        await load.setup()
    sending, stop = asyncio.Event(), asyncio.Event()
    sending.set()
    tasks = [asyncio.ensure_future(r) for load in active.values() for r in load.runners(sending, stop)]
    rows = {name: Row(fault, load=name) for name in active}
    try:
        # Every socket connected (500 at once in make faults: a join storm of its own).
        await asyncio.wait_for(asyncio.gather(*(load.ready() for load in active.values())), 120)
        await asyncio.sleep(warmup)
        started = time.monotonic()
        note = (await inject(active)) or ""
        for load in active.values():
            load.mark()
        pending = dict(active)
        deadline = started + RECOVER_WITHIN
        while pending and time.monotonic() < deadline:
            for name, load in list(pending.items()):
                if load.recovered():
                    rows[name].seconds_to_recover = round(time.monotonic() - started, 1)
                    del pending[name]
            await asyncio.sleep(0.1)
        for name in pending:
            rows[name].seconds_to_recover = round(time.monotonic() - started, 1)
            rows[name].note = "not recovered"
        await asyncio.sleep(1)
        sending.clear()
        deadline = time.monotonic() + SETTLE_WITHIN
        await asyncio.gather(*(load.settle(deadline) for load in active.values()))
    finally:
        stop.set()
        # A runner that failed fails the row (a crashed reader is not a dropped socket).
        await asyncio.wait(tasks)
        failed = [t.exception() for t in tasks if not t.cancelled() and t.exception() is not None]
        if failed:
            raise failed[0]
    out = []
    for name, load in active.items():
        row = await load.result(rows[name])
        row.note = "; ".join(x for x in (note if name == next(iter(active)) else "", row.note) if x)
        out.append(row)
    return out


COLUMNS = [
    "fault",
    "load",
    "sent",
    "acknowledged",
    "delivered",
    "lost",
    "duplicated",
    "leaked",
    "order_violations",
    "sockets_dropped",
    "seconds_to_recover",
    "converged",
]


def print_table(rows: list[Row], columns: list[str] = COLUMNS) -> str:
    lines = ["| " + " | ".join(c.replace("_", " ") for c in columns) + " |", "|" + "---|" * len(columns)]
    previous = None
    for r in rows:
        d = asdict(r)
        cells = ["" if d[c] is None else str(d[c]) for c in columns]
        if r.fault == previous:
            cells[0] = ""  # one fault, several loads: name it once
        previous = r.fault
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def as_json(self) -> str:
        return json.dumps([asdict(r) for r in self.rows], indent=2)

    def publish(self, path: Path, columns: list[str] = COLUMNS) -> None:
        """At the end of a session: the table printed, the rows written as JSON."""
        if not self.rows:
            return
        print("\n" + print_table(self.rows, columns))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.as_json())
