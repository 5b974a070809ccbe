"""Fixtures for every service's tests (see switchboard/testing.py)."""

from switchboard.testing import channel_layers, directory_down, postgres, redis_server, redis_url  # noqa: F401
