"""Fixtures for every service's tests (see switchboard/testing.py)."""

import pytest

from switchboard.testing import channel_layers, directory_down, postgres, redis_server, redis_url  # noqa: F401


@pytest.fixture(autouse=True)
def fresh_user_directory_clients():
    """switchboard.userdir's Redis clients follow the test's REDIS_URL (and event loop)."""
    from switchboard import userdir

    userdir.reset()
    yield
    userdir.reset()
