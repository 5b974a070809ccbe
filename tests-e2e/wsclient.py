"""A small WebSocket test client for the e2e suites: frames by type, with timeouts."""

from __future__ import annotations

import asyncio
import json

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

PASSWORD = "switchboard"


def token(base_url: str, username: str, password: str = PASSWORD) -> str:
    res = httpx.post(f"{base_url}/api/auth/token/", json={"username": username, "password": password})
    res.raise_for_status()
    return res.json()["access"]


class Client:
    """One socket; `frames` keeps everything received, in order."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.frames: list[dict] = []
        self._cursor = 0

    @classmethod
    async def connect(cls, url: str, tok: str | None = None, origin: str | None = None, **kwargs) -> Client:
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        ws = await websockets.connect(
            url, additional_headers=headers, origin=origin, max_size=None, open_timeout=10, **kwargs
        )
        return cls(ws)

    async def send(self, frame: dict | str | bytes) -> None:
        await self.ws.send(json.dumps(frame) if isinstance(frame, dict) else frame)

    async def recv(self, timeout: float = 5) -> dict:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame = json.loads(raw) if isinstance(raw, str) else {"type": "<binary>", "bytes": raw}
        self.frames.append(frame)
        return frame

    async def next_of(self, kind: str, timeout: float = 5, **fields) -> dict:
        """The next frame of `kind` (with these field values) after the last one
        next_of returned; frames received earlier count too."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i in range(self._cursor, len(self.frames)):
                frame = self.frames[i]
                if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
                    self._cursor = i + 1
                    return self.frames[i]
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"no {kind!r} frame; got {[f['type'] for f in self.frames[-10:]]}")
            await self.recv(remaining)

    async def drain(self, quiet: float = 0.3) -> list[dict]:
        """Everything that arrives until the socket is quiet for `quiet` seconds."""
        got = []
        try:
            while True:
                got.append(await self.recv(quiet))
        except TimeoutError:
            return got

    async def closed_with(self, timeout: float = 10) -> int:
        """Wait for the server to close; returns the close code."""
        try:
            while True:
                await self.recv(timeout)
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else 1006

    async def close(self) -> None:
        await self.ws.close()
