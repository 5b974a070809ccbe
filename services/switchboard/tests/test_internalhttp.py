"""switchboard.internalhttp, the event loop's client for calls between services (the
user lookup of notification's staff POST, issue 21): keep-alive, the bodies servers send,
a kept connection the server closed, and failures as the httpx errors callers catch."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from switchboard import internalhttp, users


class _Server(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections: list[int] = []
    mode = "length"  # "length" | "chunked" | "drop" (close every connection after one answer)

    def setup(self):
        super().setup()
        type(self).connections.append(self.client_address[1])

    def do_GET(self):
        query = parse_qs(urlsplit(self.path).query)
        name = query.get("username", [""])[0]
        if name == "ghost":
            body, status = b'{"error": "not_found"}', 404
        else:
            body, status = json.dumps({"id": 7, "username": name, "auth": self.headers["Authorization"]}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if self.mode == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (body[:5], body[5:]):
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        if self.mode == "drop":
            self.close_connection = True  # as a keep-alive timeout would, with no header saying so

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Server.connections, _Server.mode = [], "length"
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield _Server, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("mode", ["length", "chunked"])
async def test_answers_on_one_kept_connection(server, mode):
    handler, base = server
    handler.mode = mode
    client = internalhttp.Client()
    for name in ("bob", "carol", "dave"):
        res = await client.get(base + "/api/auth/users/", params={"username": name}, headers={"Authorization": "x"})
        assert res.status_code == 200 and res.json() == {"id": 7, "username": name, "auth": "x"}
    missing = await client.get(base + "/api/auth/users/", params={"username": "ghost"})
    assert missing.status_code == 404
    with pytest.raises(httpx.HTTPStatusError):
        missing.raise_for_status()
    assert len(handler.connections) == 1 and client.connects == 1
    await client.aclose()


async def test_a_kept_connection_the_server_closed_is_replaced(server):
    handler, base = server
    handler.mode = "drop"
    client = internalhttp.Client()
    for name in ("bob", "carol", "dave"):
        res = await client.get(base + "/u/", params={"username": name})
        assert res.json()["username"] == name
    assert len(handler.connections) == 3
    await client.aclose()


async def test_failures_are_httpx_errors():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(httpx.ConnectError):
        await internalhttp.Client().get(f"http://127.0.0.1:{port}/")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts, never answers
    try:
        with pytest.raises(httpx.TimeoutException):
            await internalhttp.Client().get(f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=0.3)
    finally:
        silent.close()


async def test_lookup_user_async_asks_ws_gateway_on_one_connection(server, monkeypatch):
    handler, base = server
    monkeypatch.setenv("SERVICE_URLS", base)
    found = [await users.lookup_user_async("bob", "notification") for _ in range(5)]
    assert [f["username"] for f in found] == ["bob"] * 5 and found[0]["auth"].startswith("Bearer ")
    assert await users.lookup_user_async("ghost", "notification") is None
    assert len(handler.connections) == 1
