"""Rate limits: the shared bucket is atomic under concurrency; the local one refills."""

import asyncio

from redis.asyncio import Redis

from switchboard import routes
from switchboard.ratelimit import LocalTokenBucket, RedisTokenBucket, connection_rate


async def test_concurrent_takes_never_exceed_the_burst(redis_url):
    # Two clients stand for two gateway processes hammering one user's budget.
    clients = [Redis.from_url(redis_url), Redis.from_url(redis_url)]
    buckets = [RedisTokenBucket(c, rate=0.001, burst=25) for c in clients]
    results = await asyncio.gather(*(buckets[i % 2].take("user:1") for i in range(200)))
    assert sum(r.allowed for r in results) == 25
    refused = [r for r in results if not r.allowed]
    assert all(r.retry_after > 0 for r in refused)
    for c in clients:
        await c.aclose()


async def test_budget_refills_at_the_rate(redis_url):
    client = Redis.from_url(redis_url)
    bucket = RedisTokenBucket(client, rate=50, burst=1)
    assert (await bucket.take("u")).allowed
    assert not (await bucket.take("u")).allowed
    await asyncio.sleep(0.05)
    assert (await bucket.take("u")).allowed
    await client.aclose()


def test_local_bucket_refills_with_its_clock():
    now = [0.0]
    bucket = LocalTokenBucket(rate=2, burst=2, clock=lambda: now[0])
    assert bucket.take().allowed and bucket.take().allowed
    refused = bucket.take()
    assert not refused.allowed and refused.retry_after == 0.5
    now[0] = 0.5
    assert bucket.take().allowed


def test_a_routes_own_rate_is_scaled_and_others_take_the_connection_defaults(monkeypatch):
    collab = next(r for r in routes.load().websocket if r.rate_per_second)
    chat = next(r for r in routes.load().websocket if not r.rate_per_second)
    monkeypatch.setenv("RATE_ROUTE_SCALE", "10")
    monkeypatch.setenv("RATE_CONN_PER_SECOND", "7")
    monkeypatch.setenv("RATE_CONN_BURST", "9")
    assert connection_rate(collab) == (collab.rate_per_second * 10, collab.rate_burst * 10)
    assert connection_rate(chat) == (7, 9)
