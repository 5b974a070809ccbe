"""ws-gateway test fixtures: a fresh connection registry per test (its Redis client
belongs to the test's event loop) and token helpers."""

import pytest

from switchboard import tokens
from switchboard.settings_base import channel_layers as layers_config
from ws_gateway import connections, directory, throttle


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    monkeypatch.setattr(connections, "registry", connections.Registry())


@pytest.fixture(autouse=True)
def no_directory_fill_left_running():
    """A REST user lookup can start the user directory's fill in the background (the
    directory is empty at every test's start); its reads must end before pytest-django
    empties the database, or the flush meets a locked table (SQLite's shared cache).
    pytest-django's own autouse fixture is set up before this one, so this teardown runs
    before its flush."""
    yield
    assert directory.wait_for_fill(), "the user directory's fill did not end in 10 s"


@pytest.fixture(autouse=True)
def fresh_login_throttle(redis_url, monkeypatch):
    """The login throttle on the test's Redis (never a machine's 6379), empty."""
    monkeypatch.setattr(throttle, "_script", None)
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{throttle.PREFIX}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def token_for():
    def make(username="alice", user_id=1, staff=False):
        return tokens.issue(tokens.Identity(user_id, username, staff))

    return make


@pytest.fixture
def channel_layers(redis_url, settings):
    """The shared layers, with ws-gateway's own default layer (ws_gateway/settings.py),
    so consumer tests run the path production runs (GatewayConsumer.__call__)."""
    settings.CHANNEL_LAYERS = layers_config(redis_url)
    settings.CHANNEL_LAYERS["default"]["BACKEND"] = "ws_gateway.layers.GatewayPubSubChannelLayer"
    return settings.CHANNEL_LAYERS
