"""The peer: what a Python shop picks instead, python-socketio's AsyncServer with
AsyncRedisManager, served by uvicorn (its defaults: uvloop where installed).

    REDIS_URL=redis://127.0.0.1:6379/0 uvicorn bench.peer:app --port 9002 --log-level warning

The same chat: the client connects to the default namespace with auth
{"token", "room"} (the JWT Switchboard issues), joins the room, and each
`chat_message` event is emitted to the room through Redis, so every server of a
cluster would fan it out (the manager publishes once; each server sends to its own
members).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import socketio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from switchboard.tokens import verify  # noqa: E402

manager = socketio.AsyncRedisManager(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
sio = socketio.AsyncServer(
    async_mode="asgi",
    client_manager=manager,
    cors_allowed_origins="*",
    transports=["websocket"],
    logger=False,
    engineio_logger=False,
    max_http_buffer_size=2**16,
)
app = socketio.ASGIApp(sio)
rooms: dict[str, str] = {}


@sio.event
async def connect(sid, environ, auth):
    identity = verify((auth or {}).get("token", ""))
    if identity is None or not (auth or {}).get("room"):
        raise socketio.exceptions.ConnectionRefusedError("unauthorized")
    rooms[sid] = auth["room"]
    await sio.enter_room(sid, auth["room"])


@sio.event
async def disconnect(sid, *args):
    rooms.pop(sid, None)


@sio.on("chat_message")
async def chat_message(sid, data):
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        await sio.emit("chat_message", {"type": "chat_message", **data}, room=rooms[sid])
