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
from collabclients import JsonClient, YClient
from wsclient import Client

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
    # acknowledged messages stored out of the order it sent them.
    order_violations: int = 0
    # the scale test: seconds from the fault until every inbox shard had an owner again
    seconds_to_owned: float | None = None


def auth(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


class Load:
    """One kind of participant. run_fault calls, in order: setup, runners (started as
    tasks), ready, mark (right after the fault), recovered (polled), settle (after the
    senders stop, runners still running), result (after the runners ended)."""

    name = ""

    def __init__(self, fleet, tokens):
        self.fleet, self.tokens = fleet, tokens

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
        return row


# ------------------------------------------------------------------ chat ----
class Participant:
    def __init__(self, fleet, room: str, user: str, tok: str):
        self.fleet, self.room, self.user, self.tok = fleet, room, user, tok
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

    def record(self, seq: int, text: str) -> None:
        if seq in self.seen:
            return  # history overlapping live frames: same message, same seq
        if text in self.seen.values():
            self.seen_twice.add(text)
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
                if sending.is_set() and self.connected.is_set():
                    self.sent += 1
                    await self._send(uuid.uuid4().hex[:16], f"{self.user}:{self.sent}")
                await asyncio.sleep(SEND_INTERVAL)
        finally:
            if not reader.done():
                reader.cancel()
                with contextlib.suppress(BaseException):
                    await reader
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
                    self.record(m["seq"], m["message"])
                self.connected.set()
            elif frame["type"] == "chat_message":
                self.record(frame["seq"], frame["message"])
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


class ChatLoad(Load):
    name = "chat"
    users = ("alice", "bob", "admin")

    async def setup(self) -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            res = await http.post(
                f"{self.fleet.url}/api/chat/rooms/",
                json={"name": "f" + uuid.uuid4().hex[:10]},
                headers=auth(self.tokens["alice"]),
            )
        res.raise_for_status()
        self.room = res.json().get("slug") or res.json()["name"]
        self.people = [Participant(self.fleet, self.room, u, self.tokens[u]) for u in self.users]

    def runners(self, sending, stop):
        return [p.run(sending, stop) for p in self.people]

    async def ready(self) -> None:
        await asyncio.gather(*(p.connected.wait() for p in self.people))

    def mark(self) -> None:
        self.marks = {p.user: p.sent for p in self.people}

    def recovered(self) -> bool:
        return all(any(int(t.split(":")[1]) > self.marks[p.user] for t in p.acked) for p in self.people)

    async def settle(self, deadline: float) -> None:
        while time.monotonic() < deadline and any(p.unacked for p in self.people):
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # the last broadcasts reach everyone

    async def result(self, row: Row) -> Row:
        people = self.people
        store = await asyncio.to_thread(stored, self.fleet, self.room, self.tokens["alice"])
        texts = [m["message"] for m in store]
        acked = {t for p in people for t in p.acked}
        row.sent = sum(p.sent for p in people)
        row.acknowledged = len(acked)
        seen_by_all = set.intersection(*(set(p.seen.values()) for p in people))
        row.delivered = len(acked & seen_by_all)
        row.lost = len(acked - (seen_by_all & set(texts)))
        row.duplicated = (len(texts) - len(set(texts))) + sum(len(p.seen_twice) for p in people)
        row.sockets_dropped = sum(p.drops for p in people)
        row.order_violations = order_violations(people)
        return row


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
    `holder.drops`, and `holder.connected` is cleared while no socket is open."""
    while not stop.is_set():
        try:
            client = await Client.connect(url, tok)
        except (OSError, websockets.InvalidHandshake, TimeoutError):
            await asyncio.sleep(0.3)
            continue
        reader = asyncio.ensure_future(read(client))
        try:
            while not (stop.is_set() or reader.done()):
                await asyncio.sleep(0.1)
            if reader.done() and not stop.is_set():
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
    """One user's notification socket, as a browser tab keeps it."""

    def __init__(self, load: NotificationLoad, user: str):
        self.load, self.user, self.tok = load, user, load.tokens[user]
        self.on_socket: set[int] = set()
        self.in_list: dict[int, str] = {}  # id -> title, read on (re)connects
        self.at_end: dict[int, str] = {}  # id -> title, read after the load
        self.pushed_twice: set[int] = set()
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
                    if frame["id"] in self.on_socket:
                        self.pushed_twice.add(frame["id"])
                    self.on_socket.add(frame["id"])

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
                into.update({n["id"]: n["title"] for n in page if n["title"].startswith(self.load.tag)})
                if floor is None or not page or min(n["id"] for n in page) < floor:
                    return
                offset += len(page)


class NotificationLoad(Load):
    name = "notifications"
    users = ("alice", "bob")

    async def setup(self) -> None:
        self.tag = "n" + uuid.uuid4().hex[:8] + ":"
        self.floor: int | None = None  # the first acknowledged id: older ones are not ours
        self.sent = 0
        self.acked: dict[int, str] = {}  # id -> user
        self.order: list[tuple[int, int]] = []  # (push number, id), acknowledged ones
        self.titles: dict[int, str] = {}
        self.receivers = {u: Receiver(self, u) for u in self.users}

    def runners(self, sending, stop):
        return [r.run(sending, stop) for r in self.receivers.values()] + [self._push(sending, stop)]

    async def _push(self, sending: asyncio.Event, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            while not stop.is_set():
                if not sending.is_set():
                    await asyncio.sleep(0.1)
                    continue
                user = self.users[self.sent % len(self.users)]
                self.sent += 1
                title = f"{self.tag}{self.sent}"
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
        await asyncio.gather(*(r.connected.wait() for r in self.receivers.values()))

    def mark(self) -> None:
        self.mark_at = self.sent

    def recovered(self) -> bool:
        return all(
            any(n > self.mark_at and nid in r.on_socket for n, nid in self.order) for r in self.receivers.values()
        )

    def _missing(self) -> list[int]:
        return [nid for nid, user in self.acked.items() if nid not in self.receivers[user].on_socket]

    async def settle(self, deadline: float) -> None:
        deadline = min(deadline, time.monotonic() + 10)  # the rest was missed (or listed)
        while time.monotonic() < deadline and self._missing():
            await asyncio.sleep(0.2)

    async def result(self, row: Row) -> Row:
        for r in self.receivers.values():  # what is stored: not a delivery, a check
            await r.read_list(r.at_end)
        shown = {nid for nid, user in self.acked.items() if nid in self.receivers[user].on_socket}
        listed = {nid for nid, user in self.acked.items() if nid in self.receivers[user].in_list}
        row.sent, row.acknowledged = self.sent, len(self.acked)
        row.delivered = len(shown | listed)
        row.lost = len(self.acked) - row.delivered
        titles = list(self.titles.values())
        row.duplicated = sum(len(r.pushed_twice) for r in self.receivers.values()) + len(titles) - len(set(titles))
        # A push stored twice shows its title under two ids in the list.
        for r in self.receivers.values():
            listed_titles = list(r.at_end.values())
            row.duplicated += len(listed_titles) - len(set(listed_titles))
        row.sockets_dropped = sum(r.drops for r in self.receivers.values())
        only_listed = len(listed - shown)
        if only_listed:
            row.note += f"{only_listed} not pushed live, shown by the unread list on reconnect"
        # Stored although the pusher got no 201: a pusher that retried would store it twice.
        unacked = sum(len(set(r.at_end) - set(self.acked)) for r in self.receivers.values())
        if unacked:
            row.note += f"{'; ' if row.note else ''}{unacked} stored without a 201"
        return row


# ----------------------------------------------------------------- collab ----
TOKEN = re.compile(r"<[A-Z]\d+>")


class Editor:
    """One editor: `kind` "yjs" (inserts at its end, offline too) or "json" (inserts at
    0 while connected, acknowledged by `ack`)."""

    def __init__(self, load: CollabLoad, letter: str, user: str, kind: str):
        self.load, self.letter, self.kind = load, letter, kind
        url = f"{load.fleet.ws_url}/ws/collab/{load.doc_id}/"
        self.client = YClient(url, load.tokens[user], letter) if kind == "yjs" else JsonClient(url, load.tokens[user])
        self.made = 0
        self.acked: list[int] = []  # token numbers
        self.drops = 0
        self.up = False
        self.connected = asyncio.Event()

    def token(self, n: int) -> str:
        return f"<{self.letter}{n}>"

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
                    if self.kind == "yjs" and self.client.ws is None and sending.is_set():
                        self._insert()  # typing offline: the next sync delivers it
                    await self._connect()
                    continue
                self.up = True
                self.connected.set()
                if sending.is_set():
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
        try:
            await self.client.edit("insert", 0, self.token(self.made), cid=self.token(self.made))
        except websockets.ConnectionClosed:
            pass

    def acknowledged(self) -> list[int]:
        if self.kind == "json":
            return sorted(int(cid[2:-1]) for cid in self.client.acks)
        return self.acked


class CollabLoad(Load):
    name = "collab"

    async def setup(self) -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            res = await http.post(
                f"{self.fleet.url}/api/collab/documents/",
                json={"title": "f" + uuid.uuid4().hex[:8], "content": ""},
                headers=auth(self.tokens["alice"]),
            )
            res.raise_for_status()
            self.doc_id = res.json()["id"]
            res = await http.post(
                f"{self.fleet.url}/api/collab/documents/{self.doc_id}/share/",
                json={"username": "bob", "role": "edit"},
                headers=auth(self.tokens["alice"]),
            )
            res.raise_for_status()
        self.editors = [
            Editor(self, "A", "alice", "yjs"),
            Editor(self, "B", "bob", "yjs"),
            Editor(self, "J", "bob", "json"),
        ]
        self.server = ""
        self.converged = False  # decided in settle, while every editor is still connected

    def runners(self, sending, stop):
        return [e.run(sending, stop) for e in self.editors]

    async def ready(self) -> None:
        await asyncio.gather(*(e.connected.wait() for e in self.editors))

    def mark(self) -> None:
        self.marks = {e.letter: e.made for e in self.editors}

    def recovered(self) -> bool:
        values = [e.value for e in self.editors]
        for e in self.editors:
            newer = [n for n in e.acknowledged() if n > self.marks[e.letter]]
            if not any(all(e.token(n) in v for v in values) for n in newer[-3:]):
                return False
        return True

    async def _server(self) -> str:
        async with httpx.AsyncClient(timeout=10) as http:
            res = await http.get(
                f"{self.fleet.url}/api/collab/documents/{self.doc_id}/", headers=auth(self.tokens["alice"])
            )
        res.raise_for_status()
        return res.json()["content"]

    def _converged(self) -> bool:
        return all(e.is_up() and e.value == self.server for e in self.editors)

    async def settle(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                self.server = await self._server()
            if self._converged():
                self.converged = True
                return
            await asyncio.sleep(0.3)

    async def result(self, row: Row) -> Row:
        row.converged = "yes" if self.converged else "no"
        text = self.server
        acked = [e.token(n) for e in self.editors for n in e.acknowledged()]
        in_doc = TOKEN.findall(text)
        row.sent = sum(e.made for e in self.editors)
        row.acknowledged = len(acked)
        row.delivered = sum(1 for t in acked if t in text and all(t in e.value for e in self.editors))
        lost = [t for t in acked if t not in text]
        row.lost = len(lost)
        row.duplicated = len(in_doc) - len(set(in_doc))
        if lost:  # which editor (A, B: Yjs; J: JSON) and which of its edits, for a post-mortem
            row.note += f"lost {' '.join(lost[:10])} of {[(e.letter, e.made) for e in self.editors]}"
        row.sockets_dropped = sum(e.drops for e in self.editors)
        if row.converged == "no":
            row.note += f"server {len(text)} chars, clients {[len(e.value) for e in self.editors]}"
        return row


# ----------------------------------------------------------------- reports ----
class ReportLoad(Load):
    """Reports of the chat load's room, followed on alice's /ws/tasks/ socket. The fault
    calls `request` (and waits for `running`) before it strikes."""

    name = "reports"
    count = 3

    def __init__(self, fleet, tokens, chat: ChatLoad):
        super().__init__(fleet, tokens)
        self.chat = chat
        self.task_ids: list[str] = []
        self.frames: dict[str, list[dict]] = {}
        self.running = asyncio.Event()
        self.connected = asyncio.Event()
        self.sent = 0
        self.drops = 0

    def runners(self, sending, stop):
        return [self._follow(stop)]

    async def _follow(self, stop: asyncio.Event) -> None:
        await listen(f"{self.fleet.ws_url}/ws/tasks/", self.tokens["alice"], self._read, stop, self)

    async def _read(self, client: Client) -> None:
        self.connected.set()
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                frame = json.loads(await client.ws.recv())
                if frame["type"] == "task_update":
                    self.frames.setdefault(frame["task_id"], []).append(frame)
                    if frame["status"] == "progress":
                        self.running.set()

    async def ready(self) -> None:
        await self.connected.wait()

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

    def _completions(self, task_id: str) -> int:
        return sum(1 for f in self.frames.get(task_id, []) if f["status"] == "completed")

    def recovered(self) -> bool:
        return all(self._completions(t) for t in self.task_ids)

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
        row.delivered = sum(1 for t in self.task_ids if self._completions(t))
        row.lost = max(row.lost, row.acknowledged - row.delivered)
        row.duplicated = sum(max(0, self._completions(t) - 1) for t in self.task_ids)
        row.sockets_dropped = self.drops
        row.note = "; ".join(x for x in (row.note, f"runs per report: {attempts}") if x)
        return row


LOADS = ("chat", "notifications", "collab")


def make_loads(fleet, tokens, names) -> dict[str, Load]:
    """One load per name; "chat#2" is a second chat load (its own room)."""
    loads: dict[str, Load] = {}
    for name in names:
        kind = name.split("#")[0]
        if kind == "chat":
            loads[name] = ChatLoad(fleet, tokens)
        elif kind == "notifications":
            loads[name] = NotificationLoad(fleet, tokens)
        elif kind == "collab":
            loads[name] = CollabLoad(fleet, tokens)
        elif kind == "reports":
            loads[name] = ReportLoad(fleet, tokens, loads["chat"])
        else:
            raise ValueError(name)
    return loads


async def run_fault(fleet, tokens, fault: str, inject, *, loads=LOADS, warmup=2.0) -> list[Row]:
    """Start every load, `await inject(loads)`, measure until each recovered, settle,
    and return one row per load."""
    active = make_loads(fleet, tokens, loads)
    for load in active.values():
        await load.setup()
    sending, stop = asyncio.Event(), asyncio.Event()
    sending.set()
    tasks = [asyncio.ensure_future(r) for load in active.values() for r in load.runners(sending, stop)]
    rows = {name: Row(fault, load=name) for name in active}
    try:
        await asyncio.wait_for(asyncio.gather(*(load.ready() for load in active.values())), 30)
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
        await asyncio.gather(*tasks, return_exceptions=True)
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
