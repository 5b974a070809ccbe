"""Frames far larger than nginx's WebSocket buffers pass through it whole, both ways.

Since 8 Dec 2026 nginx proxies an upgraded connection through two 1 KB buffers
(nginxconf.WS_PROXY_BUFFER_SIZE) instead of two pages: an idle socket cost its worker
21.6 KB, 13.6 KB after (issue 21, bench/run.py's idle `rss_per_socket_kb_by_process`).
A frame larger than the buffer is relayed in pieces; this shows the pieces add up, for
many sockets at once, a history replay's size from the gateway and a Yjs update's from
the client, through a real nginx rendered from the route table."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from launcher import free_port, nginx_binary
from nginxconf import render

pytestmark = pytest.mark.skipif(
    not (shutil.which("nginx") or shutil.which("/usr/sbin/nginx")), reason="nginx not installed"
)

SOCKETS = 40
FROM_GATEWAY = 2 * 1024 * 1024  # a long history or a big document's snapshot
FROM_CLIENT = 300 * 1024  # a large Yjs update


async def _gateway(ws):
    """Stands in for ws-gateway: sends a big frame first, then echoes every frame."""
    await ws.send(os.urandom(FROM_GATEWAY))
    async for frame in ws:
        await ws.send(frame)


async def _client(url: str, n: int) -> None:
    async with connect(url, max_size=None, open_timeout=10) as ws:
        first = await ws.recv()
        assert isinstance(first, bytes) and len(first) == FROM_GATEWAY
        text = (f"{n}:" + "x" * FROM_CLIENT)[:FROM_CLIENT]
        blob = os.urandom(FROM_CLIENT)
        for frame in (text, blob, "small", text):
            await ws.send(frame)
            assert await ws.recv() == frame


def test_large_frames_cross_the_proxy_whole_on_many_sockets(tmp_path):
    async def run(nginx_port: int, gateway_port: int) -> None:
        async with serve(_gateway, "127.0.0.1", gateway_port, max_size=None):
            url = f"ws://127.0.0.1:{nginx_port}/ws/chat/big/"
            deadline = time.time() + 10
            while True:  # nginx is up once one socket crosses it
                try:
                    await _client(url, -1)
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    await asyncio.sleep(0.1)
            await asyncio.gather(*(_client(url, n) for n in range(SOCKETS)))

    gateway_port, nginx_port = free_port(), free_port()
    text = render({"ws-gateway": [f"127.0.0.1:{gateway_port}"]}, f"127.0.0.1:{nginx_port}", tmp_path)
    # The buffer under test is the small one the fleet runs with, not nginx's default.
    assert re.search(r"location /ws/ \{[^}]*proxy_buffer_size 1k;", text)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    nginx = subprocess.Popen([nginx_binary(), "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"])
    try:
        asyncio.run(run(nginx_port, gateway_port))
    finally:
        nginx.terminate()
        nginx.wait(10)
