"""The single stats publisher: one lease holder publishes each interval, the lease
moves when the holder dies or stops, and viewers who connect reuse the snapshot."""

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest
from channels.layers import get_channel_layer
from channels.testing import ApplicationCommunicator
from redis.asyncio import Redis

from dashboard import stats
from dashboard.inbox import DashboardInbox
from dashboard.lease import ACQUIRED, HELD_ELSEWHERE, RENEWED, Lease
from dashboard.models import Order
from dashboard.publisher import StatsPublisher
from switchboard import metrics
from switchboard.presence import ALL, Member, Presence, route_topic

pytestmark = [pytest.mark.usefixtures("channel_layers"), pytest.mark.django_db(transaction=True)]
STAFF = {"id": 3, "username": "admin", "is_staff": True}


@pytest.fixture
async def redis(redis_url, monkeypatch):
    # Sources over HTTP point at a closed port: they are "down", which the stats must say.
    monkeypatch.setenv("SERVICE_URLS", "http://127.0.0.1:9")
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def computations(trigger: str) -> float:
    return metrics.DASHBOARD_STATS_COMPUTATIONS.labels(trigger)._value.get()


async def test_lease_has_one_holder_moves_on_expiry_and_on_release(redis):
    a, b = Lease(redis, "t:lease", 0.3, "a"), Lease(redis, "t:lease", 0.3, "b")
    assert await a.acquire() == ACQUIRED
    assert await b.acquire() == HELD_ELSEWHERE
    assert await a.acquire() == RENEWED
    await asyncio.sleep(0.4)  # a stops renewing, as a dead process does
    assert await b.acquire() == ACQUIRED
    assert await a.release() is False  # not a's to give away any more
    assert await b.release() is True
    assert await a.acquire() == ACQUIRED


async def test_stats_count_distinct_online_users_connections_by_route_and_today_orders(redis):
    presence = Presence(redis)
    await presence.add([ALL, route_topic("chat")], Member("c1", 1, "alice"))
    await presence.add([ALL, route_topic("chat")], Member("c2", 1, "alice"))  # a second tab
    await presence.add([ALL, route_topic("dashboard")], Member("c3", 3, "admin"))
    await Order.objects.acreate(user_id=1, username="alice", total="10.00")
    await Order.objects.acreate(user_id=1, username="alice", total="2.50")
    await Order.objects.acreate(user_id=1, username="alice", total="99.00", status="cancelled")
    data = await stats.compute(redis, "interval")
    assert data["online_users"] == 2 and data["connections"] == 3
    assert data["connections_by_route"]["chat"] == 2 and data["connections_by_route"]["dashboard"] == 1
    assert (data["today_orders"], data["today_revenue"]) == (2, "12.50")
    assert data["series"]["orders"][-1] == 3 and len(data["series"]["orders"]) == 30
    # Sources that are down are named, never shown as zero; absent reports count 0 running.
    assert data["total_users"] is None and "auth" in data["unavailable"]
    assert data["report_tasks_running"] == 0 and data["reports_available"] is False


async def test_only_the_lease_holder_publishes_and_a_standby_takes_over(redis):
    layer = get_channel_layer()
    viewer = await layer.new_channel()
    await layer.group_add("dashboard", viewer)
    one = StatsPublisher(redis, interval=0.2, owner="one")
    two = StatsPublisher(redis, interval=0.2, owner="two")
    # Short, so the test waits for expiry briefly, yet longer than one tick's stats
    # computation on a loaded machine (500 ms was not: CI saw the new holder's own
    # lease lapse while it computed, and its tick report False).
    one.lease.ttl_ms = two.lease.ttl_ms = 2000
    before = computations("interval")
    assert await one.tick() is True and await two.tick() is False
    assert await one.tick() is True and await two.tick() is False
    assert computations("interval") - before == 2
    for _ in range(2):
        got = json.loads((await asyncio.wait_for(layer.receive(viewer), 5))["text"])
        assert got["type"] == "stats_update" and "online_users" in got["data"]
    await asyncio.sleep(2.1)  # "one" died: it no longer renews
    assert await two.tick() is True and two.active
    assert await one.tick() is False and not one.active


async def test_a_stopped_publisher_hands_the_lease_over_at_once(redis):
    one = StatsPublisher(redis, interval=0.1, owner="one")
    two = StatsPublisher(redis, interval=0.1, owner="two")
    stop = asyncio.Event()
    task = asyncio.create_task(one.run(stop))
    await asyncio.sleep(0.3)
    assert await one.lease.holder() == "one"
    stop.set()
    await asyncio.wait_for(task, 5)
    assert await two.tick() is True


async def test_viewers_get_initial_stats_from_the_snapshot_and_non_staff_are_refused(redis):
    layer = get_channel_layer()
    app = ApplicationCommunicator(DashboardInbox.as_asgi(), {"type": "channel", "channel": "dashboard.0"})
    conns = [await layer.new_channel() for _ in range(5)]
    before = computations("connect")
    for conn in conns:
        await app.send_input({"type": "gw.connect", "conn": conn, "route": "dashboard", "user": STAFF, "params": {}})
    for conn in conns:
        accept = await asyncio.wait_for(layer.receive(conn), 5)
        assert accept["type"] == "gw.accept"
        first = json.loads(accept["frames"][0])
        assert first["type"] == "initial_stats" and "today_orders" in first["data"]
    assert computations("connect") - before == 1  # the first computed; the others reused it
    intruder = await layer.new_channel()
    user = {"id": 1, "username": "alice", "is_staff": False}
    await app.send_input({"type": "gw.connect", "conn": intruder, "route": "dashboard", "user": user, "params": {}})
    assert await asyncio.wait_for(layer.receive(intruder), 5) == {"type": "gw.reject", "code": 4403}
    app.stop()


async def test_messages_per_minute_come_from_samples_of_chats_message_counter(redis):
    now_minute = int(time.time() // 60)
    # Last samples of chat's all-time message count in the three minutes before now.
    await redis.hset(
        stats.CHAT_TOTALS_KEY, mapping={str(now_minute - 3): 100, str(now_minute - 2): 130, str(now_minute - 1): 130}
    )
    first = datetime.fromtimestamp((now_minute - 4) * 60, UTC)
    series = await stats._messages_per_minute(redis, 142, first, 5, now_minute)
    # minute -4 and -3: no earlier sample, unknown; then 30, 0, and 12 so far this minute.
    assert series == [None, None, 30, 0, 12]
    # Chat unreachable this tick: the known minutes stay, nothing is made up.
    assert (await stats._messages_per_minute(redis, None, first, 5, now_minute))[2:4] == [30, 0]


async def test_a_publisher_frozen_past_its_lease_does_not_publish_that_tick(redis):
    layer = get_channel_layer()
    viewer = await layer.new_channel()
    await layer.group_add("dashboard", viewer)
    slow = StatsPublisher(redis, interval=0.2, owner="slow")
    slow.lease.ttl_ms = 1  # any computation outlives it
    assert await slow.tick() is False
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(viewer), 0.5)


async def test_a_tick_that_outlives_its_lease_is_one_warning_not_a_traceback(redis, monkeypatch, caplog):
    publisher = StatsPublisher(redis, interval=0.05, owner="hung")
    publisher.lease.ttl_ms = 50

    async def hung():
        await asyncio.sleep(10)

    monkeypatch.setattr(publisher, "tick", hung)
    stop = asyncio.Event()
    run = asyncio.ensure_future(publisher.run(stop))
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.wait_for(run, 5)
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert any("outlived its lease" in r.getMessage() for r in caplog.records)
