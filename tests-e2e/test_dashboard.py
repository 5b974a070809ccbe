"""The live dashboard end to end, through nginx: one stats computation per interval
for 50 viewers, online users from shared presence (drops on leave and on a dead
gateway), an order reaching a staff dashboard within a second, 4403 for non-staff,
an Alertmanager webhook becoming an alert frame, and the stats publisher's lease
moving to a standby when its holder is killed."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from datetime import UTC, datetime

import httpx
import pytest
import redis
from fleetenv import E2E_ENV
from prometheus_client.parser import text_string_to_metric_families
from wsclient import Client

INTERVAL = float(E2E_ENV["DASHBOARD_STATS_INTERVAL_SECONDS"])
LEASE = float(E2E_ENV["DASHBOARD_LEASE_SECONDS"])
PRESENCE_TTL = float(E2E_ENV["PRESENCE_TTL_SECONDS"])
SECRET = E2E_ENV["ALERT_WEBHOOK_SECRET"]
PUBLISHERS = ("dashboard-publisher-0", "dashboard-publisher-1")


def dash_url(fleet) -> str:
    return f"{fleet.ws_url}/ws/dashboard/"


def scrape(fleet, program: str, name: str, **labels) -> float:
    """One sample of a process's own /metrics (never routed by nginx)."""
    port = fleet.program(program).metrics_port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as res:
        text = res.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def interval_computations(fleet) -> float:
    return sum(
        scrape(fleet, p, "switchboard_dashboard_stats_computations_total", trigger="interval") for p in PUBLISHERS
    )


async def stats_until(client: Client, predicate, timeout: float) -> dict:
    """The first stats_update whose data satisfies `predicate`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            frame = await client.next_of("stats_update", timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        last = frame["data"]
        if predicate(last):
            return last
    raise AssertionError(f"no stats_update matched within {timeout}s; last: {last}")


async def collect_updates(client: Client, seconds: float) -> list[dict]:
    got = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            got.append((await client.next_of("stats_update", timeout=left))["data"])
        except TimeoutError:
            break
    return got


async def test_fifty_viewers_cost_one_stats_computation_per_interval(fleet, tokens):
    viewers = await asyncio.gather(*(Client.connect(dash_url(fleet), tokens["admin"]) for _ in range(50)))
    try:
        for v in viewers:
            first = await v.next_of("initial_stats", timeout=20)
            assert {"online_users", "total_users", "today_orders", "today_revenue", "report_tasks_running"} <= set(
                first["data"]
            )
        await stats_until(viewers[0], lambda d: d["connections_by_route"].get("dashboard", 0) >= 50, 20)
        # Viewers other than the first still hold frames computed while we waited:
        # only what was computed from here on is the window's.
        since = datetime.now(UTC)
        before, started = interval_computations(fleet), time.monotonic()
        window = 6 * INTERVAL
        seen = await asyncio.gather(*(collect_updates(v, window) for v in viewers))
        seen = [[d for d in frames if datetime.fromisoformat(d["computed_at"]) >= since] for frames in seen]
        computed = interval_computations(fleet) - before
        ticks = (time.monotonic() - started) / INTERVAL
    finally:
        await asyncio.gather(*(v.close() for v in viewers))
    seconds = sum(scrape(fleet, p, "switchboard_dashboard_stats_seconds_sum") for p in PUBLISHERS)
    count = sum(scrape(fleet, p, "switchboard_dashboard_stats_seconds_count") for p in PUBLISHERS)
    print(
        f"\n50 viewers, {ticks:.1f} intervals: {computed:.0f} stats computations;"
        f" {1000 * seconds / max(count, 1):.0f} ms per computation on average"
    )
    # One per interval (a tick may straddle the window's edges), never one per viewer.
    assert 1 <= computed <= ticks + 2
    # Every frame any viewer got came from those few computations, and every viewer
    # got each of them (but for a tick that straddles the window's edges).
    distinct = {d["computed_at"] for frames in seen for d in frames}
    assert len(distinct) <= computed + 1
    assert all(len(frames) >= max(1, computed - 2) for frames in seen), [len(f) for f in seen]


async def test_online_users_are_distinct_users_on_any_route_and_drop_on_leave_and_on_a_dead_gateway(fleet, tokens):
    # Sockets straight to one gateway process each, so the test knows which to kill.
    gw0 = f"ws://127.0.0.1:{fleet.program('ws-gateway-0').http_port}"
    gw1 = f"ws://127.0.0.1:{fleet.program('ws-gateway-1').http_port}"
    watcher = await Client.connect(f"{gw0}/ws/dashboard/", tokens["admin"])
    await watcher.next_of("initial_stats", timeout=10)
    alice_tabs = [await Client.connect(f"{gw1}/ws/chat/lobby/", tokens["alice"]) for _ in range(2)]
    for tab in alice_tabs:
        await tab.next_of("history", timeout=10)
    bob = await Client.connect(f"{gw1}/ws/tasks/", tokens["bob"])
    try:
        # admin (dashboard) + alice (two tabs, once) + bob (tasks route) = 3 users.
        data = await stats_until(
            watcher,
            lambda d: (
                d["online_users"] == 3
                and d["connections_by_route"]["chat"] == 2
                and d["connections_by_route"]["tasks"] == 1
            ),
            15,
        )
        assert data["connections_by_route"]["dashboard"] == 1
        await bob.close()
        await stats_until(watcher, lambda d: d["online_users"] == 2 and d["connections_by_route"]["tasks"] == 0, 10)

        # alice's gateway dies without a word: her presence expires by itself.
        killed = time.monotonic()
        fleet.kill("ws-gateway-1")
        await stats_until(watcher, lambda d: d["online_users"] == 1 and d["connections_by_route"]["chat"] == 0, 30)
        gone_after = time.monotonic() - killed
        print(f"\nonline users dropped {gone_after:.1f}s after the gateway was killed (TTL {PRESENCE_TTL}s)")
        assert gone_after <= PRESENCE_TTL + 3 * INTERVAL + 5
    finally:
        await watcher.close()
        fleet.wait_ready(time.time() + 60, ["ws-gateway-1"])


async def test_an_order_posted_over_http_reaches_a_staff_dashboard_within_a_second(fleet, tokens):
    viewer = await Client.connect(dash_url(fleet), tokens["admin"])
    await viewer.next_of("initial_stats", timeout=10)
    latencies = []

    async def receipt():
        got = await viewer.next_of("new_order", timeout=10)
        return got, time.perf_counter()

    async with httpx.AsyncClient(timeout=10) as http:
        # A running service is warm: one read first, so the first measurement is not
        # the HTTP process's lazy start-up (its first request and database connection).
        assert (
            await http.get(f"{fleet.url}/api/orders/?limit=1", headers={"Authorization": f"Bearer {tokens['alice']}"})
        ).status_code == 200
        for i in range(5):
            waiting = asyncio.create_task(receipt())
            sent = time.perf_counter()
            res = await http.post(
                f"{fleet.url}/api/orders/",
                json={"total": f"{10 + i}.50", "items": [{"name": "tea", "quantity": 1, "price": f"{10 + i}.50"}]},
                headers={"Authorization": f"Bearer {tokens['alice']}"},
            )
            assert res.status_code == 201, res.text
            got, received = await waiting
            assert got["order"]["id"] == res.json()["id"]
            assert (got["order"]["user"], got["order"]["total"]) == ("alice", f"{10 + i}.50")
            latencies.append(received - sent)
        mine = (await http.get(f"{fleet.url}/api/orders/", headers={"Authorization": f"Bearer {tokens['bob']}"})).json()
        assert all(o["user"] == "bob" for o in mine["orders"])
    await viewer.close()
    print("\norder POST -> new_order at a staff socket: " + ", ".join(f"{t * 1000:.0f} ms" for t in latencies))
    assert max(latencies) < 1.0


async def test_a_non_staff_dashboard_socket_is_refused_4403(fleet, tokens):
    alice = await Client.connect(dash_url(fleet), tokens["alice"])
    assert await alice.closed_with() == 4403


async def test_an_alertmanager_webhook_becomes_an_alert_frame(fleet, tokens):
    viewer = await Client.connect(dash_url(fleet), tokens["admin"])
    await viewer.next_of("initial_stats", timeout=10)
    payload = {
        "version": "4",
        "status": "firing",
        "receiver": "switchboard",
        "groupLabels": {"alertname": "InboxBacklog"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "InboxBacklog", "severity": "critical"},
                "annotations": {"summary": f"chat inbox backlog {time.time()}"},
                "startsAt": "2026-11-25T07:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": f"{time.time_ns():x}",
            }
        ],
    }
    async with httpx.AsyncClient(timeout=10) as http:
        refused = await http.post(
            f"{fleet.url}/api/dashboard/alerts/", json=payload, headers={"Authorization": "Bearer wrong"}
        )
        assert refused.status_code == 401
        res = await http.post(
            f"{fleet.url}/api/dashboard/alerts/", json=payload, headers={"Authorization": f"Bearer {SECRET}"}
        )
        assert res.status_code == 200 and res.json()["stored"] == 1
    got = await viewer.next_of("alert", timeout=5)
    assert (got["level"], got["message"], got["name"]) == (
        "critical",
        payload["alerts"][0]["annotations"]["summary"],
        "InboxBacklog",
    )
    await viewer.close()


def active_publishers(fleet) -> list[str]:
    active = []
    for p in PUBLISHERS:
        try:
            if scrape(fleet, p, "switchboard_dashboard_publisher_active") == 1:
                active.append(p)
        except OSError:
            pass  # restarting
    return active


@pytest.mark.timeout(120)
async def test_killing_the_active_publisher_moves_the_lease_and_stats_keep_coming_from_one(fleet, tokens):
    viewer = await Client.connect(dash_url(fleet), tokens["admin"])
    await viewer.next_of("initial_stats", timeout=10)
    await viewer.next_of("stats_update", timeout=10)
    deadline = time.monotonic() + 10
    while len(active := active_publishers(fleet)) != 1:
        assert time.monotonic() < deadline, f"active publishers: {active}"
        await asyncio.sleep(0.2)
    holder = active[0]
    await viewer.drain(0.1)
    killed = time.monotonic()
    fleet.kill(holder)
    await viewer.next_of("stats_update", timeout=LEASE + 10 * INTERVAL)
    gap = time.monotonic() - killed
    print(f"\nstats_update resumed {gap:.1f}s after the active publisher was killed (lease {LEASE}s)")
    assert gap <= LEASE + 3 * INTERVAL + 3
    # The killed one comes back as a standby (supervisord); still one frame per interval.
    fleet.wait_ready(time.time() + 60, [holder])
    frames = await collect_updates(viewer, 5 * INTERVAL)
    assert len({d["computed_at"] for d in frames}) <= 5 + 2
    await viewer.close()
    deadline = time.monotonic() + 10
    while len(active := active_publishers(fleet)) != 1:
        assert time.monotonic() < deadline, f"active publishers: {active}"
        await asyncio.sleep(0.2)


@pytest.mark.timeout(120)
async def test_a_cleanly_stopped_publisher_releases_the_lease_at_once(fleet, tokens):
    deadline = time.monotonic() + 15
    while len(active := active_publishers(fleet)) != 1:
        assert time.monotonic() < deadline, f"active publishers: {active}"
        await asyncio.sleep(0.2)
    holder = active[0]
    pid = fleet.pid(holder)
    lease_key = "sb:dashboard:publisher"
    store = redis.Redis.from_url(fleet.redis_url)
    assert f":{pid}:" in store.get(lease_key).decode()
    viewer = await Client.connect(dash_url(fleet), tokens["admin"])
    await viewer.next_of("initial_stats", timeout=10)
    try:
        fleet.ctl("stop", holder)  # SIGTERM, as a deploy does; returns once it exited
        owner = store.get(lease_key)
        # Released on the way out, not left to expire: nobody waits out the lease.
        assert owner is None or f":{pid}:" not in owner.decode()
        await viewer.drain(0.05)
        stopped = time.monotonic()
        await viewer.next_of("stats_update", timeout=LEASE + 5)
        print(f"\nstats_update resumed {time.monotonic() - stopped:.1f}s after a clean stop")
    finally:
        await viewer.close()
        fleet.ctl("start", holder)
        fleet.wait_ready(time.time() + 60, [holder])
