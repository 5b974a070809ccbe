"""Shard ownership on a real Redis: one owner per shard whatever the replicas, hand-overs
that lose and repeat nothing, and fencing of an owner that froze past its lease.

The service consumer is a stand-in ASGI app that records what it handled; the leases,
fences, queue and doorbell are the real ones (switchboard.ownership)."""

import asyncio

import pytest
from redis.asyncio import Redis

from switchboard import ownership
from switchboard.ownership import InboxLayer, Owner, Timing, assignment

SHARDS = 4
FAST = Timing(lease=0.6, renew=0.1, stall=5)


def recording_app(handled: list, gate=None):
    """An inbox consumer that records (shard, token, n, redelivery) for each command."""

    async def app(scope, receive, send):
        while True:
            message = await receive()
            claim, done = message.pop("__claim__")
            if gate is not None:
                await gate(message)
            handled.append((scope["shard"], claim.token, message["n"], claim.redelivery))
            done.set_result("ok")

    return app


def owner(redis_url, name, handled, gate=None, timing=FAST):
    return Owner(
        "t",
        SHARDS,
        recording_app(handled, gate),
        InboxLayer(hosts=[redis_url], prefix="sb-inbox"),
        Redis.from_url(redis_url),
        member=name,
        timing=timing,
    )


async def until(check, seconds=5.0):
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def disjoint_and_complete(*owners) -> bool:
    held = [set(o.owned()) for o in owners]
    return sum(len(h) for h in held) == SHARDS and set().union(*held) == set(range(SHARDS))


def test_assignment_spreads_shards_evenly_and_the_same_for_everyone():
    assert assignment(["b", "a"], 4) == {0: "a", 1: "b", 2: "a", 3: "b"}
    assert assignment(["c", "a", "b"], 4) == assignment(["a", "b", "c"], 4)
    assert set(assignment(["a", "b", "c", "d", "e"], 4).values()) == {"a", "b", "c", "d"}
    assert assignment([], 4) == {}


async def test_each_shard_has_one_owner_as_replicas_come_and_go(redis_url):
    handled = []
    a, b, c = (owner(redis_url, n, handled) for n in "abc")
    ta = asyncio.ensure_future(a.run())
    await until(lambda: set(a.owned()) == set(range(SHARDS)))
    tb = asyncio.ensure_future(b.run())
    await until(lambda: len(a.owned()) == 2 and disjoint_and_complete(a, b))
    tc = asyncio.ensure_future(c.run())
    await until(lambda: disjoint_and_complete(a, b, c) and all(o.owned() for o in (a, b, c)))
    # A clean stop hands over at once (no lease to wait out).
    tb.cancel()
    await asyncio.gather(tb, return_exceptions=True)
    await until(lambda: disjoint_and_complete(a, c), seconds=FAST.renew * 10)
    for t in (ta, tc):
        t.cancel()
    await asyncio.gather(ta, tc, return_exceptions=True)


async def test_commands_are_handled_once_and_in_order_through_hand_overs(redis_url):
    handled = []
    sender = InboxLayer(hosts=[redis_url], prefix="sb-inbox")
    a, b = owner(redis_url, "a", handled), owner(redis_url, "b", handled)
    ta = asyncio.ensure_future(a.run())
    tb = None
    for n in range(300):
        await sender.send("t.1", {"type": "x", "n": n})
        if n == 100:
            tb = asyncio.ensure_future(b.run())  # shard 1 moves to b
        if n == 200:
            tb.cancel()  # and back to a
        await asyncio.sleep(0.002)
    await until(lambda: len(handled) >= 300)
    assert [n for _, _, n, _ in handled] == list(range(300))
    assert len({token for _, token, _, _ in handled}) == 3  # a, then b, then a again
    ta.cancel()
    await asyncio.gather(ta, tb, return_exceptions=True)


async def test_an_owner_frozen_past_its_lease_is_fenced_out_and_its_command_redone_once(redis_url):
    handled, frozen = [], asyncio.Event()
    thaw = asyncio.Event()

    async def freeze_on_first(message):
        if message["n"] == 0 and not frozen.is_set():
            frozen.set()
            await thaw.wait()  # a SIGSTOP in the middle of the command

    a = owner(redis_url, "a", handled, gate=freeze_on_first)
    b = owner(redis_url, "b", handled)
    sender = InboxLayer(hosts=[redis_url], prefix="sb-inbox")
    await a.tick()  # a owns every shard; then it stops renewing: it is frozen
    assert set(a.owned()) == set(range(SHARDS))
    for n in range(3):
        await sender.send("t.2", {"type": "x", "n": n})
    await asyncio.wait_for(frozen.wait(), 5)
    old_token = a.owned()[2]
    # b sees a's leases run out, takes every shard and redoes a's unfinished command first.
    tb = asyncio.ensure_future(b.run())
    await until(lambda: sorted(n for _, _, n, _ in handled) == [0, 1, 2])
    assert [(n, again) for _, _, n, again in handled] == [(0, True), (1, False), (2, False)]
    assert all(token > old_token for _, token, _, _ in handled)
    # a thaws: its command completes in memory, but it can take nothing more from the shard.
    await sender.send("t.2", {"type": "x", "n": 3})
    thaw.set()
    await until(lambda: 2 not in a.owned())
    await until(lambda: [n for _, _, n, _ in handled if n == 3] == [3])
    assert [(n, token) for _, token, n, _ in handled if token == old_token] == [(0, old_token)]
    assert b.owned().get(2, 0) > old_token
    tb.cancel()
    for runner in list(a.runners.values()):
        runner.cancel()
    await asyncio.gather(tb, return_exceptions=True)


async def test_a_stalled_command_gives_up_the_shards_and_fails_liveness(redis_url):
    handled = []

    async def hang(message):
        if message["n"] == 0:
            await asyncio.Event().wait()

    slow = Timing(lease=0.6, renew=0.1, stall=0.5)
    a = owner(redis_url, "a", handled, gate=hang, timing=slow)
    b = owner(redis_url, "b", handled, timing=slow)
    ta = asyncio.ensure_future(a.run())
    await until(lambda: len(a.owned()) == SHARDS)
    assert a.healthy()[0]
    tb = asyncio.ensure_future(b.run())
    sender = InboxLayer(hosts=[redis_url], prefix="sb-inbox")
    await until(lambda: 0 in a.owned() and 0 not in b.owned())
    await sender.send("t.0", {"type": "x", "n": 0})
    await until(lambda: not a.healthy()[0])
    await until(lambda: set(b.owned()) == set(range(SHARDS)))
    assert a.owned() == {}
    # b redoes the command a was stuck on (a's in-flight record went back to the queue).
    await until(lambda: [(n, again) for _, _, n, again in handled] == [(0, True)])
    for t in (ta, tb):
        t.cancel()
    await asyncio.gather(ta, tb, return_exceptions=True)


@pytest.mark.parametrize("records", [2])
async def test_records_keep_the_last_commands_with_shard_token_and_id(redis_url, records, monkeypatch):
    monkeypatch.setattr(ownership, "records", ownership.deque(maxlen=records))
    claim = ownership.Claim("t", 1, 7, "abc")
    for _ in range(3):
        ownership.record(claim, "a", "ok")
    lines = ownership.records_jsonl().decode().splitlines()
    assert len(lines) == 2
    assert '"shard":1,"token":7,"id":"abc"' in lines[0]
