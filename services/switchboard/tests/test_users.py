"""switchboard.users: the calls to ws-gateway's user directory share one kept-alive
connection (issue 21: a bare httpx.get built a client, an SSL context and a TCP
connection per staff POST /api/notifications/, most of its time)."""

from __future__ import annotations

import pytest

from switchboard import users
from switchboard.jsonserver import JsonServer


@pytest.fixture
def directory(monkeypatch):
    with JsonServer(lambda path: {"id": 7, "username": "bob", "is_staff": False}) as server:
        monkeypatch.setenv("SERVICE_URLS", server.url)
        monkeypatch.setattr(users, "_http", None, raising=False)  # a client of this test's own
        yield server


def test_lookups_share_one_connection(directory):
    found = [users.lookup_user("bob", "notification") for _ in range(5)]
    assert found == [{"id": 7, "username": "bob", "is_staff": False}] * 5
    assert len(directory.connections) == 1, directory.connections
