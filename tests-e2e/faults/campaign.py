"""The fault campaign's load and its bookkeeping: chat clients with the delivery
protocol of README "Reliability", and one result row per fault.

Each participant is one user on one socket through nginx. It sends numbered
messages with a `client_id`, keeps every one unacknowledged until its own echo (with
the room's `seq`) comes back, resends what is unacknowledged after a reconnect (with
`?since=<last seq>`) or after ACK_TIMEOUT, and records every (seq, text) it sees.
A row then says: sent, acknowledged, delivered (acknowledged and seen by every
participant), lost (acknowledged but missing from a participant or from the store),
duplicated (one text stored or seen under two seqs), sockets dropped, and seconds from
the fault until every participant had an acknowledgement for a message sent after it.

Other services' loads plug in as more participant kinds when they land.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import asdict, dataclass, field

import httpx
import websockets
from wsclient import Client

SEND_INTERVAL = 0.25  # per participant; two of them stay well under the user rate
ACK_TIMEOUT = 4.0  # an inbox worker killed after taking a command loses it: resend


@dataclass
class Row:
    fault: str
    sent: int = 0
    acknowledged: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    sockets_dropped: int = 0
    seconds_to_recover: float = 0.0
    note: str = ""


class Participant:
    def __init__(self, fleet, room: str, user: str, tok: str):
        self.fleet, self.room, self.user, self.tok = fleet, room, user, tok
        self.seen: dict[int, str] = {}  # seq -> text
        self.seen_twice: set[str] = set()  # a text seen under two seqs
        self.unacked: dict[str, tuple[str, float]] = {}  # client_id -> (text, sent at)
        self.acked: dict[str, int] = {}  # text -> seq
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
            headers={"Authorization": f"Bearer {tok}"},
            timeout=10,
        )
        res.raise_for_status()
        page = res.json()["messages"]
        if not page:
            return out
        out += page
        after = page[-1]["seq"]


async def run_fault(fleet, tokens, fault: str, inject, *, users=("alice", "bob", "admin"), warmup=2.0) -> Row:
    """Load a fresh room, `await inject()`, and measure until every participant recovered."""
    res = httpx.post(
        f"{fleet.url}/api/chat/rooms/",
        json={"name": "f" + uuid.uuid4().hex[:10]},
        headers={"Authorization": f"Bearer {tokens['alice']}"},
    )
    res.raise_for_status()
    room = res.json().get("slug") or res.json()["name"]
    people = [Participant(fleet, room, u, tokens[u]) for u in users]
    sending, stop = asyncio.Event(), asyncio.Event()
    sending.set()
    tasks = [asyncio.ensure_future(p.run(sending, stop)) for p in people]
    row = Row(fault)
    try:
        await asyncio.wait_for(asyncio.gather(*(p.connected.wait() for p in people)), 30)
        await asyncio.sleep(warmup)
        started = time.monotonic()
        row.note = (await inject()) or ""
        # Recovered: every participant has an acknowledgement for a message sent after the fault.
        marks = {p.user: p.sent for p in people}
        deadline = started + 90
        while time.monotonic() < deadline:
            if all(any(int(t.split(":")[1]) > marks[p.user] for t in p.acked) for p in people):
                break
            await asyncio.sleep(0.1)
        row.seconds_to_recover = round(time.monotonic() - started, 1)
        await asyncio.sleep(1)
        sending.clear()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(p.unacked for p in people):
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # the last broadcasts reach everyone
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    store = stored(fleet, room, tokens["alice"])
    texts = [m["message"] for m in store]
    acked = {t for p in people for t in p.acked}
    row.sent = sum(p.sent for p in people)
    row.acknowledged = len(acked)
    seen_by_all = set.intersection(*(set(p.seen.values()) for p in people))
    row.delivered = len(acked & seen_by_all)
    row.lost = len(acked - (seen_by_all & set(texts)))
    row.duplicated = (len(texts) - len(set(texts))) + sum(len(p.seen_twice) for p in people)
    row.sockets_dropped = sum(p.drops for p in people)
    return row


def print_table(rows: list[Row]) -> str:
    cols = ["fault", "sent", "acknowledged", "delivered", "lost", "duplicated", "sockets_dropped", "seconds_to_recover"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        d = asdict(r)
        lines.append("| " + " | ".join(str(d[c]) for c in cols) + " |")
    return "\n".join(lines)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def as_json(self) -> str:
        return json.dumps([asdict(r) for r in self.rows], indent=2)
