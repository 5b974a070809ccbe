"""dashboard test fixtures: bearer headers, and a fresh Redis client per test (a
client belongs to the event loop that made it)."""

import pytest

from dashboard import inbox
from switchboard import tokens


@pytest.fixture(autouse=True)
def fresh_redis(monkeypatch):
    monkeypatch.setattr(inbox, "_redis", None)


def bearer(user_id=1, username="alice", staff=False) -> dict:
    token = tokens.issue(tokens.Identity(user_id, username, staff))
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def alice():
    return bearer(1, "alice")


@pytest.fixture
def bob():
    return bearer(2, "bob")


@pytest.fixture
def admin():
    return bearer(3, "admin", staff=True)
