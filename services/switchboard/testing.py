"""Test tools that ship with the code: a real Redis per test session, on a free port,
and a throwaway PostgreSQL cluster.

Service conftests import these fixtures. `redis_url` points REDIS_URL at the session's
server and empties it before each test; `channel_layers` also points Django's
CHANNEL_LAYERS there (channels rebuilds its layers when the setting changes).
`postgres` is a cluster of the session (Debian's PostgreSQL 15 binaries): a test asks it
for a database of its own (`postgres.create_db(name)`); the fault campaign's
tests-e2e/faults/pg.py starts its own the same way (switchboard/pgcluster.py, which
`bench/run.py --db postgres` uses too).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

from switchboard.pgcluster import PG_BIN, PostgresCluster, free_port, postgres_missing
from switchboard.settings_base import channel_layers as layers_config

__all__ = ["PG_BIN", "PostgresCluster", "free_port", "postgres_missing"]  # re-exported: tests import them from here


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


class SentinelSetup:
    """A real Redis master, one replica and one Sentinel watching them (quorum 1), on
    free ports: what REDIS_SENTINELS points at in production, small enough for a test.
    `failover()` promotes the replica the way an operator or a dead master would."""

    MASTER = "switchboard"

    def __init__(self, directory: Path):
        self.directory = directory
        self.ports = [free_port(), free_port()]  # the first starts as master
        self.sentinel_port = free_port()
        self.procs: list[subprocess.Popen] = []
        try:
            self._start()
        except BaseException:
            self.stop()  # a half-started setup leaves no server behind
            raise

    def _start(self) -> None:
        directory = self.directory
        self.procs.extend(start_redis(port, str(directory)) for port in self.ports)
        replica = redis.Redis(port=self.ports[1])
        replica.replicaof("127.0.0.1", self.ports[0])
        self._wait(lambda: replica.info("replication").get("master_link_status") == "up", "replica in sync")
        conf = directory / "sentinel.conf"  # Sentinel rewrites its config: a file of its own
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {self.MASTER} 127.0.0.1 {self.ports[0]} 1\n"
            f"sentinel down-after-milliseconds {self.MASTER} 2000\n"
            f"sentinel failover-timeout {self.MASTER} 10000\n"
        )
        self.procs.append(
            subprocess.Popen([shutil.which("redis-server"), str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
        )
        self.sentinel = redis.Redis(port=self.sentinel_port, decode_responses=True)
        # Raw SENTINEL commands: redis-py 6.4's parsers of SENTINEL MASTER reject its own kwargs.
        self._wait(
            lambda: len(self.sentinel.execute_command("SENTINEL", "REPLICAS", self.MASTER)) >= 1,
            "Sentinel sees the replica",
        )

    @staticmethod
    def _wait(check, what: str, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        pytest.fail(f"Sentinel setup: no {what} after {seconds}s")

    def master_port(self) -> int:
        return int(self.sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.MASTER)[1])

    def failover(self) -> int:
        """SENTINEL FAILOVER; returns once the replica is the master. Its new port."""
        old = self.master_port()
        self.sentinel.execute_command("SENTINEL", "FAILOVER", self.MASTER)
        self._wait(lambda: self.master_port() != old, "new master")
        new = self.master_port()
        self._wait(lambda: redis.Redis(port=new).info("replication")["role"] == "master", "promoted replica")
        self._wait(lambda: redis.Redis(port=old).info("replication")["role"] == "slave", "demoted master")
        return new

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(10)


@pytest.fixture
def redis_sentinel(tmp_path, monkeypatch):
    """REDIS_SENTINELS and REDIS_SENTINEL_MASTER pointing at a fresh SentinelSetup."""
    setup = SentinelSetup(tmp_path)
    monkeypatch.setenv("REDIS_SENTINELS", f"127.0.0.1:{setup.sentinel_port}")
    monkeypatch.setenv("REDIS_SENTINEL_MASTER", setup.MASTER)
    monkeypatch.setenv("REDIS_URL", "redis://unused-with-sentinels/0")  # db 0; the host is the Sentinel's answer
    yield setup
    setup.stop()


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL cluster for the session (make deps installs the binaries)."""
    missing = postgres_missing()
    if missing:
        pytest.fail(f"this test needs {missing}: run deploy/system-deps.sh (make deps)")
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.destroy()


def make_api_key(*scopes: str, name: str = "test key") -> str:
    """A server-API key with `scopes`, in the index of the Redis REDIS_URL names now (a
    service's tests have no ws-gateway database; ws_gateway/apikeystore.py writes the
    same entry). Returns the `Authorization` header's value."""
    from switchboard import apikeys

    apikeys.reset()
    key_id, key = apikeys.new_key()
    apikeys.publish_record(apikeys.digest(key), apikeys.KeyRecord(key_id, name, tuple(scopes)))
    return f"Bearer {key}"


@pytest.fixture
def directory_down(monkeypatch):
    """ws-gateway's user directory (switchboard.users) does not answer: SERVICE_URLS
    points at a port nothing listens on, and the process's client is a new one."""
    from switchboard import users

    monkeypatch.setenv("SERVICE_URLS", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr(users, "_http", None)
