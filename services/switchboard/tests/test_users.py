"""switchboard.users: the calls to ws-gateway's user directory share one kept-alive
connection (issue 21: a bare httpx.get built a client, an SSL context and a TCP
connection per staff POST /api/notifications/, most of its time)."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from switchboard import users


class _Directory(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as ws-gateway's daphne answers
    connections: list[int] = []

    def setup(self):
        super().setup()
        type(self).connections.append(self.client_address[1])

    def do_GET(self):
        body = json.dumps({"id": 7, "username": "bob", "is_staff": False}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def directory(monkeypatch):
    _Directory.connections = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Directory)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SERVICE_URLS", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setattr(users, "_http", None, raising=False)  # a client of this test's own
    yield _Directory
    server.shutdown()
    server.server_close()


def test_lookups_share_one_connection(directory):
    found = [users.lookup_user("bob", "notification") for _ in range(5)]
    assert found == [{"id": 7, "username": "bob", "is_staff": False}] * 5
    assert len(directory.connections) == 1, directory.connections
