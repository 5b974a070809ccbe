"""A Redis that stops answering without closing its connections (SIGSTOP: the kernel
still accepts and buffers, nothing replies): every Switchboard client of it gives up
with a clear error instead of waiting for ever, and works again once Redis answers.

Each test runs its own redis-server (stopping the session's would stall every other
test). The clients are built the way the processes build them: redisconn's clients,
the channel layers from settings_base.channel_layers, an Owner as the inbox command
runs it (its SIGTERM handler cancels the owner's task, as the test does). The
asyncio.wait_for around each call only detects a hang (a failure); it is no speed
assertion."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import redis
import redis.exceptions
from channels_redis.pubsub import RedisPubSubChannelLayer

from switchboard import ownership, redisconn
from switchboard.settings_base import channel_layers
from switchboard.testing import free_port, start_redis

# Long enough to tell "gave up" from "hung", whatever the machine's load.
HANG = 30


@pytest.fixture
def stallable(tmp_path, monkeypatch):
    """A redis-server of this test's own, REDIS_URL pointing at it, and short socket
    timeouts (the defaults are for production)."""
    port = free_port()
    proc = start_redis(port, str(tmp_path))
    url = f"redis://127.0.0.1:{port}/0"
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.delenv("REDIS_SENTINELS", raising=False)
    monkeypatch.delenv("CHANNEL_LAYER_URLS", raising=False)
    monkeypatch.setenv("REDIS_SOCKET_TIMEOUT_SECONDS", "2")
    monkeypatch.setenv("REDIS_CONNECT_TIMEOUT_SECONDS", "2")
    server = Stallable(proc, url)
    yield server
    server.resume()
    proc.terminate()
    proc.wait(10)


class Stallable:
    def __init__(self, proc, url):
        self.proc, self.url = proc, url

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)


async def test_client_gives_up_on_a_stalled_redis_and_recovers(stallable):
    client = redisconn.client()
    await client.set("k", "v")  # a pooled connection, open before the stall
    stallable.stop()
    with pytest.raises(redis.exceptions.TimeoutError):
        await asyncio.wait_for(client.get("k"), HANG)
    # A connection opened during the stall: the TCP connect succeeds (the kernel
    # accepts), the handshake is never answered.
    fresh = redisconn.client()
    with pytest.raises((redis.exceptions.TimeoutError, redis.exceptions.ConnectionError)):
        await asyncio.wait_for(fresh.ping(), HANG)
    stallable.resume()
    assert await asyncio.wait_for(client.get("k"), HANG) == b"v"
    assert await asyncio.wait_for(fresh.ping(), HANG)
    await client.aclose()
    await fresh.aclose()


@pytest.mark.timeout(HANG)
def test_sync_client_gives_up_on_a_stalled_redis_and_recovers(stallable):
    client = redisconn.sync_client()
    client.set("k", "v")
    stallable.stop()
    # A blocking client cannot be interrupted from here: pytest-timeout is the hang detector.
    with pytest.raises(redis.exceptions.TimeoutError):
        client.get("k")
    stallable.resume()
    assert client.get("k") == b"v"


async def test_inbox_send_gives_up_on_a_stalled_redis_and_recovers(stallable):
    """What ws-gateway does for every gw.connect: InboxLayer.send (the queue and the
    shard's doorbell)."""
    layer = ownership.InboxLayer(**channel_layers()["inbox"]["CONFIG"])
    await layer.send("chat.0", {"type": "gw.connect", "n": 0})
    stallable.stop()
    with pytest.raises(redis.exceptions.TimeoutError):
        await asyncio.wait_for(layer.send("chat.0", {"type": "gw.connect", "n": 1}), HANG)
    stallable.resume()
    await asyncio.wait_for(layer.send("chat.0", {"type": "gw.connect", "n": 2}), HANG)
    queued = redis.Redis.from_url(stallable.url).zcard("sb-inboxchat.0")
    assert queued >= 2  # the first and the last (the stalled one may have landed too)
    await layer.flush()


async def test_group_send_gives_up_on_a_stalled_redis_and_recovers(stallable):
    """A service's broadcast (switchboard.publish): the pub/sub layer's PUBLISH."""
    layer = RedisPubSubChannelLayer(**channel_layers()["default"]["CONFIG"])
    await layer.group_send("room", {"type": "x"})
    stallable.stop()
    with pytest.raises(redis.exceptions.TimeoutError):
        await asyncio.wait_for(layer.group_send("room", {"type": "x"}), HANG)
    stallable.resume()
    await asyncio.wait_for(layer.group_send("room", {"type": "x"}), HANG)
    await layer.flush()


async def _idle_app(scope, receive, send):
    while True:
        message = await receive()
        _claim, done = message.pop("__claim__")
        done.set_result("ok")


def _owner(name: str, timing: ownership.Timing) -> ownership.Owner:
    # As management/commands/inbox.py builds it.
    return ownership.Owner(
        "t",
        4,
        _idle_app,
        ownership.InboxLayer(**channel_layers()["inbox"]["CONFIG"]),
        redisconn.client(),
        member=name,
        timing=timing,
    )


async def _until(check, seconds: float = HANG) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.05)


async def test_inbox_worker_stops_on_sigterm_with_redis_stalled_and_its_shards_move_after(stallable):
    timing = ownership.Timing(lease=3, renew=0.5, stall=20)
    worker = _owner("a", timing)
    task = asyncio.ensure_future(worker.run())
    await _until(lambda: set(worker.owned()) == {0, 1, 2, 3})
    stallable.stop()
    await asyncio.sleep(0.2)  # its runners and loop are now in calls to the stalled Redis
    task.cancel()  # what the inbox command's SIGTERM handler does
    with pytest.raises(asyncio.CancelledError):
        # Bounded by the drain (Owner.shutdown_seconds()): the releases are best-effort.
        await asyncio.wait_for(task, HANG)
    assert worker.owned() == {}
    stallable.resume()
    # What it could not release runs out with its lease: another replica owns every shard.
    other = _owner("b", timing)
    task = asyncio.ensure_future(other.run())
    try:
        await _until(lambda: set(other.owned()) == {0, 1, 2, 3})
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
