"""Test clients for collab, as users' programs would be written:

* YClient: a Yjs client in Python (pycrdt) speaking the y-websocket protocol, the way
  y-websocket's WebsocketProvider does: sync step 1 on open, step 2 in reply to the
  server's step 1, local changes sent as updates while connected (kept in the doc
  while not, and delivered by the next sync).
* JsonClient: the seed's JSON protocol (?protocol=json): document_content, then edit
  and ack frames applied in order to a local string.

With `reconnect=True` either one connects again when the server closes it, as
y-websocket does (a 4000 from the gateway, a restart); without, it stays closed and
`closed_code` says why.
"""

from __future__ import annotations

import asyncio
import json

import websockets
from pycrdt import Doc, Text

from collab import ydoc


async def connect_again(client) -> None:
    """What y-websocket does after the server closed it: try again every 0.2 s (20 s
    at most) until `client.connect()` succeeds or something else reconnected it."""
    for _ in range(100):
        await asyncio.sleep(0.2)
        if client.ws is not None and client.ready_to_send():
            return
        try:
            await client.connect()
            return
        except (OSError, websockets.WebSocketException, TimeoutError):
            continue


class YClient:
    def __init__(self, url: str, token: str, name: str, reconnect: bool = False):
        self.url = f"{url}?token={token}"
        self.name = name
        self.reconnect = reconnect
        self.drop_next = 0  # local updates to lose on the way, as a Redis restart may
        self.closes: list[int] = []
        self.doc = Doc()
        self.text = self.doc.get(ydoc.TEXT_NAME, type=Text)
        self.ws = None
        self.synced = asyncio.Event()
        self.denied: list[str] = []
        self.awareness: dict[int, str] = {}
        self.awareness_log: list[tuple[int, str]] = []  # every (client id, state) received
        self._remote = False
        self._sub = self.doc.observe(self._on_change)
        self.reader: asyncio.Task | None = None
        self.closed_code: int | None = None
        self.text_frames: list[str] = []

    def _on_change(self, event) -> None:
        if self._remote or self.ws is None or not self.synced.is_set():
            return  # remote changes are not echoed; offline ones go with the next sync
        if self.drop_next:
            self.drop_next -= 1
            return
        asyncio.get_running_loop().create_task(self._send(ydoc.update_message(event.update)))

    async def _send(self, data: bytes) -> None:
        try:
            if self.ws is not None:
                await self.ws.send(data)
        except websockets.ConnectionClosed:
            pass

    async def connect(self) -> YClient:
        self.synced.clear()
        self.ws = await websockets.connect(self.url, max_size=None, open_timeout=15)
        self.reader = asyncio.get_running_loop().create_task(self._read(self.ws))
        await self.ws.send(ydoc.sync_step1(self.doc))
        return self

    async def _read(self, ws) -> None:
        try:
            async for raw in ws:
                if isinstance(raw, str):
                    # y-websocket would throw on it (it reads every frame as binary).
                    self.text_frames.append(raw)
                    continue
                message = ydoc.parse(raw)
                if message.kind == ydoc.MSG_SYNC and message.step == ydoc.SYNC_STEP1:
                    await ws.send(ydoc.sync_step2(self.doc, message.payload))
                elif message.kind == ydoc.MSG_SYNC:
                    self._remote = True
                    try:
                        self.doc.apply_update(message.payload)
                    finally:
                        self._remote = False
                    if message.step == ydoc.SYNC_STEP2:
                        self.synced.set()
                elif message.kind == ydoc.MSG_AWARENESS:
                    for entry in ydoc.read_awareness(message.payload):
                        self.awareness[entry.client_id] = entry.state
                        self.awareness_log.append((entry.client_id, entry.state))
                elif message.kind == ydoc.MSG_AUTH:
                    self.denied.append(raw[3:].decode(errors="replace"))
        except websockets.ConnectionClosed as exc:
            self.closed_code = exc.rcvd.code if exc.rcvd else 1006
            self.closes.append(self.closed_code)
        finally:
            if self.ws is ws:
                self.ws = None
                if self.reconnect:  # closed by the server, not by disconnect()
                    asyncio.get_running_loop().create_task(connect_again(self))

    def ready_to_send(self) -> bool:
        return self.ws is not None

    async def open(self) -> YClient:
        """Connect and wait for the server's sync step 2."""
        await self.connect()
        await self.wait_synced()
        return self

    async def wait_synced(self, timeout: float = 15) -> None:
        await asyncio.wait_for(self.synced.wait(), timeout)

    async def disconnect(self) -> None:
        ws, self.ws = self.ws, None
        self.synced.clear()
        if ws is not None:
            await ws.close()
        if self.reader:
            await asyncio.wait([self.reader], timeout=5)

    def insert(self, position: int, value: str) -> None:
        self.text.insert(min(position, len(self.text)), value)

    def delete(self, position: int, count: int) -> None:
        size = len(self.text)
        position = min(position, size)
        end = min(size, position + count)
        if end > position:
            del self.text[position:end]

    def set_awareness(self, state: dict, clock: int = 1) -> None:
        entry = ydoc.AwarenessEntry(self.doc.client_id, clock, json.dumps(state))
        asyncio.get_running_loop().create_task(self._send(ydoc.awareness_message([entry])))

    @property
    def value(self) -> str:
        return str(self.text)


class JsonClient:
    """The seed's protocol; positions are UTF-16 units (ASCII in these tests)."""

    def __init__(self, url: str, token: str, reconnect: bool = False):
        self.url = f"{url}?protocol=json&token={token}"
        self.reconnect = reconnect
        self.closes: list[int] = []
        self.closing = False
        self.value = ""
        self.seq = 0
        self.frames: list[dict] = []
        self.acks: dict[str, dict] = {}
        self.ws = None
        self.ready = asyncio.Event()

    async def connect(self) -> JsonClient:
        self.ready.clear()
        self.ws = await websockets.connect(self.url, max_size=None, open_timeout=15)
        self.reader = asyncio.get_running_loop().create_task(self._read())
        await asyncio.wait_for(self.ready.wait(), 15)
        return self

    def _apply(self, edit: dict) -> None:
        p = edit["position"]
        if edit["action"] == "insert":
            self.value = self.value[:p] + edit["text"] + self.value[p:]
        else:
            self.value = self.value[:p] + self.value[p + edit["length"] :]

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                assert isinstance(raw, str), "a JSON socket was sent a binary frame"
                data = json.loads(raw)
                self.frames.append(data)
                if data["type"] == "document_content":
                    self.value, self.seq = data["content"], data["seq"]
                    self.ready.set()
                elif data["type"] == "edit":
                    self._apply(data)
                    self.seq = data["seq"]
                elif data["type"] == "ack":
                    for edit in data["edits"]:
                        self._apply(edit)
                    self.seq = max(self.seq, data["seq"])
                    if "client_id" in data:
                        self.acks[data["client_id"]] = data
        except websockets.ConnectionClosed as exc:
            self.closes.append(exc.rcvd.code if exc.rcvd else 1006)
            if self.reconnect and not self.closing:
                self.ready.clear()
                asyncio.get_running_loop().create_task(connect_again(self))

    def ready_to_send(self) -> bool:
        return self.ready.is_set()

    async def edit(self, action: str, position: int, text: str = "", length: int | None = None, cid: str = ""):
        frame = {"type": "edit", "action": action, "position": position, "text": text}
        if length is not None:
            frame["length"] = length
        if cid:
            frame["client_id"] = cid
        if not self.reconnect:
            return await self.ws.send(json.dumps(frame))
        await asyncio.wait_for(self.ready.wait(), 30)
        try:
            await self.ws.send(json.dumps(frame))
        except websockets.ConnectionClosed:
            pass  # never acknowledged: the caller sees no ack for it

    async def close(self) -> None:
        self.closing = True
        await self.ws.close()
