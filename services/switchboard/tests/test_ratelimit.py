"""Rate limits: the shared bucket is atomic under concurrency; the local one refills."""

import asyncio

from redis.asyncio import Redis

from switchboard.ratelimit import LocalTokenBucket, RedisTokenBucket


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
