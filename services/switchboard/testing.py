"""Test tools that ship with the code: a real Redis per test session, on a free port.

Service conftests import these fixtures. `redis_url` points REDIS_URL at the session's
server and empties it before each test; `channel_layers` also points Django's
CHANNEL_LAYERS there (channels rebuilds its layers when the setting changes).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
import redis

from switchboard.settings_base import channel_layers as layers_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(port: int, directory: str) -> subprocess.Popen:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server not found: run `make deps`")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            if client.ping():
                return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("test redis-server did not start")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    port = free_port()
    proc = start_redis(port, str(tmp_path_factory.mktemp("redis")))
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def redis_url(redis_server, monkeypatch):
    redis.Redis.from_url(redis_server).flushall()
    monkeypatch.setenv("REDIS_URL", redis_server)
    return redis_server


@pytest.fixture
def channel_layers(redis_url, settings):
    settings.CHANNEL_LAYERS = layers_config(redis_url)
    return settings.CHANNEL_LAYERS
