"""The floor: the least a Python WebSocket server and Redis pub/sub can cost for this chat.

    python bench/floor.py --port 9001 --redis redis://127.0.0.1:6379/0

One process, the `websockets` library (no compression), one Redis pattern
subscription for every room. A client frame is checked to be a JSON object and
published as is to `floor:<room>`; every message from Redis goes to the room's local
sockets with `websockets.broadcast()`, which encodes a frame once for all of them.
Sockets authenticate with the same JWT as Switchboard's and get a `history` frame on
open (empty), so the load client needs no special case. No database, no sequence:
that is why it is the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import orjson
import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection, broadcast, serve

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))

from switchboard.tokens import verify  # noqa: E402

rooms: dict[str, set[ServerConnection]] = {}
HISTORY = orjson.dumps({"type": "history", "messages": [], "last_seq": 0}).decode()


async def handler(ws: ServerConnection, redis: aioredis.Redis) -> None:
    parts = ws.request.path.strip("/").split("/")  # ws/chat/<room>
    auth = ws.request.headers.get("Authorization", "")
    identity = verify(auth[7:]) if auth[:7].lower() == "bearer " else None
    if identity is None or len(parts) != 3:
        await ws.close(4401, "unauthorized")
        return
    room = parts[2]
    members = rooms.setdefault(room, set())
    members.add(ws)
    try:
        await ws.send(HISTORY)
        async for text in ws:
            try:
                data = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            if isinstance(data, dict) and data.get("type") == "chat_message":
                await redis.publish(f"floor:{room}", text)
    finally:
        members.discard(ws)
        if not members:
            rooms.pop(room, None)


async def relay(redis: aioredis.Redis) -> None:
    pubsub = redis.pubsub()
    await pubsub.psubscribe("floor:*")
    async for message in pubsub.listen():
        if message["type"] != "pmessage":
            continue
        room = message["channel"].decode()[6:]
        members = rooms.get(room)
        if members:
            broadcast(members, message["data"].decode())


async def main_async(port: int, redis_url: str) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    task = asyncio.create_task(relay(redis))
    async with serve(lambda ws: handler(ws, redis), "127.0.0.1", port, compression=None, max_size=2**16) as server:
        await server.serve_forever()
    task.cancel()


def main() -> None:
    p = argparse.ArgumentParser(description="the floor server of make bench")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--redis", required=True)
    args = p.parse_args()
    asyncio.run(main_async(args.port, args.redis))


if __name__ == "__main__":
    main()
