"""ws-gateway test fixtures: a fresh connection registry per test (its Redis client
belongs to the test's event loop) and token helpers."""

import pytest

from switchboard import tokens
from ws_gateway import connections


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    monkeypatch.setattr(connections, "registry", connections.Registry())


@pytest.fixture
def token_for():
    def make(username="alice", user_id=1, staff=False):
        return tokens.issue(tokens.Identity(user_id, username, staff))

    return make
