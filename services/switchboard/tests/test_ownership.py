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
# For tests about hand-overs, not expiry: a loaded machine can starve a tick past a
# 0.6 s lease, and the fenced owner's redone command then looks like a duplicate.
STEADY = Timing(lease=10, renew=0.1, stall=10)


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


async def ticking(o: Owner, ticked: asyncio.Event) -> None:
    """An owner's loop as Owner.run ticks it, minus its shutdown: cancelling this task is
    a SIGKILL (nothing released, nothing renewed any more). `ticked` is set after each tick."""
    while True:
        started = asyncio.get_running_loop().time()
        await o.tick()
        ticked.set()
        await asyncio.sleep(max(0.0, o.timing.renew - (asyncio.get_running_loop().time() - started)))


async def test_a_dead_replicas_shards_are_owned_again_within_lease_plus_renew(redis_url):
    """The documented crash bound (INBOX_LEASE_SECONDS + INBOX_RENEW_SECONDS,
    docs/operations.md) as a correctness property, close to its worst case: k dies just
    after a tick, so its heartbeat and leases live a whole lease on; the survivors tick
    in step with k (each member's first tick wakes the others) and its entries expire
    0.1 s after one of their ticks, so they notice it almost a renew later; and one of
    k's shards is given to a survivor only together with a hand-over between survivors
    (members a < b < k: a owns 0 and 3, b 1, k 2; after k, a owns 0 and 2, b 1 and 3).
    If a hand-over waited for the next owner's own tick, that would add up to a renew."""
    timing = Timing(lease=2.1, renew=1.0, stall=30)
    slack = 0.4  # a loaded machine's scheduling
    handled = []
    a, b, k = (owner(redis_url, n, handled, timing=timing) for n in "abk")
    loop = asyncio.get_running_loop()
    tb = asyncio.ensure_future(b.run())
    await asyncio.sleep(0.05)
    ta = asyncio.ensure_future(a.run())
    await asyncio.sleep(0.05)
    ticked = asyncio.Event()
    tk = asyncio.ensure_future(ticking(k, ticked))
    await until(lambda: (set(a.owned()), set(b.owned()), set(k.owned())) == ({0, 3}, {1}, {2}), seconds=10)
    ticked.clear()
    await ticked.wait()
    tk.cancel()  # the SIGKILL, just after k's tick
    for runner in k.runners.values():
        runner.cancel()
    killed = loop.time()
    await until(lambda: disjoint_and_complete(a, b) and set(a.owned()) == {0, 2}, seconds=10)
    took = loop.time() - killed
    bound = timing.lease + timing.renew
    assert took <= bound + slack, f"every shard owned again {took:.2f}s after the kill; the bound is {bound}s"
    for t in (ta, tb, tk):
        t.cancel()
    await asyncio.gather(ta, tb, tk, return_exceptions=True)


async def test_a_clean_stop_hands_its_shards_over_without_waiting_for_a_tick(redis_url):
    """A scale-down: the leaver wakes the others as it releases, so a shard is not left
    without an owner for up to INBOX_RENEW_SECONDS (here 3 s, stopped just after the
    other's tick)."""
    timing = Timing(lease=6.0, renew=3.0, stall=30)
    handled = []
    a, b = owner(redis_url, "a", handled, timing=timing), owner(redis_url, "b", handled, timing=timing)
    ta = asyncio.ensure_future(a.run())
    tb = asyncio.ensure_future(b.run())
    await until(lambda: disjoint_and_complete(a, b) and a.owned() and b.owned(), seconds=10)
    ticked = a.last_tick
    await until(lambda: a.last_tick != ticked, seconds=10)
    tb.cancel()
    await asyncio.gather(tb, return_exceptions=True)
    await until(lambda: set(a.owned()) == set(range(SHARDS)), seconds=timing.renew / 2)
    ta.cancel()
    await asyncio.gather(ta, return_exceptions=True)


async def test_commands_are_handled_once_and_in_order_through_hand_overs(redis_url):
    handled = []
    sender = InboxLayer(hosts=[redis_url], prefix="sb-inbox")
    a, b = owner(redis_url, "a", handled, timing=STEADY), owner(redis_url, "b", handled, timing=STEADY)
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
    # b sees a's leases run out, takes every shard and redoes a's unfinished commands, in
    # order: the one in hand and the two a had taken ahead (waiting in their lane; all
    # three in a's held record, so all three are redeliveries).
    tb = asyncio.ensure_future(b.run())
    await until(lambda: sorted(n for _, _, n, _ in handled) == [0, 1, 2])
    assert [(n, again) for _, _, n, again in handled] == [(0, True), (1, True), (2, True)]
    assert all(token > old_token for _, token, _, _ in handled)
    # a thaws: it can take nothing more from the shard. Its command in hand completes in
    # memory at most (its taker, not blocked behind the command, may have seen the lease
    # gone first and cancelled it).
    await sender.send("t.2", {"type": "x", "n": 3})
    thaw.set()
    await until(lambda: 2 not in a.owned())
    await until(lambda: [n for _, _, n, _ in handled if n == 3] == [3])
    assert [(n, token) for _, token, n, _ in handled if token == old_token] in ([], [(0, old_token)])
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


# ------------------------------------------------------------------- lanes ----
def lane_app(handled: list, gate=None):
    """Like recording_app, but each command runs in a task of its own, as InboxConsumer
    runs a runner's commands: what may run side by side is the runner's decision."""

    async def run(scope, message, claim, done):
        try:
            if gate is not None:
                await gate(message)
            handled.append((scope["shard"], claim.token, message["params"]["room"], message["n"], claim.redelivery))
            done.set_result("ok")
        except asyncio.CancelledError:
            done.cancel()
            raise

    return tasks_app(lambda scope, message: run(scope, message, *message.pop("__claim__")))


def tasks_app(start):
    """An inbox app that runs `start(scope, message)` in a task per message received and
    cancels what is still running when the owner stops it."""

    async def app(scope, receive, send):
        tasks = set()
        try:
            while True:
                task = asyncio.ensure_future(start(scope, await receive()))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            for task in list(tasks):
                task.cancel()

    return app


def owner_of(redis_url, name, app, timing=FAST, batch_types=()):
    return Owner(
        "t",
        SHARDS,
        app,
        InboxLayer(hosts=[redis_url], prefix="sb-inbox"),
        Redis.from_url(redis_url),
        member=name,
        timing=timing,
        batch_types=batch_types,
    )


def lane_owner(redis_url, name, handled, gate=None, timing=FAST):
    return owner_of(redis_url, name, lane_app(handled, gate), timing)


def chat_command(room: str, n: int) -> dict:
    """A gw.receive as the gateway sends it: its key (the room) comes from the route."""
    user = {"id": 1, "username": "u", "is_staff": False}
    return {"type": "gw.receive", "conn": "c", "route": "chat", "user": user, "params": {"room": room}, "n": n}


def by_room(handled, room):
    return [n for _, _, r, n, _ in handled if r == room]


async def test_a_key_held_up_does_not_hold_up_another_key_of_its_shard(redis_url):
    handled, stuck = [], asyncio.Event()

    async def slow_room_a(message):
        if message["params"]["room"] == "a":
            await stuck.wait()  # a storm's command that takes long

    a = lane_owner(redis_url, "a", handled, gate=slow_room_a)
    sender = InboxLayer(hosts=[redis_url], prefix="sb-inbox")
    task = asyncio.ensure_future(a.run())
    await until(lambda: len(a.owned()) == SHARDS)
    for n in range(50):
        await sender.send("t.1", chat_command("a", n))
    for n in range(3):
        await sender.send("t.1", chat_command("b", n))
    # Room b's commands, behind fifty of room a's on the same shard, are handled, in order.
    await until(lambda: by_room(handled, "b") == [0, 1, 2])
    assert by_room(handled, "a") == []
    stuck.set()
    await until(lambda: by_room(handled, "a") == list(range(50)))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_every_command_a_crashed_owner_held_is_redone_once_in_its_keys_order(redis_url):
    handled, frozen = [], asyncio.Event()
    thaw = asyncio.Event()

    async def freeze_room_a(message):
        if message["params"]["room"] == "a" and not frozen.is_set():
            frozen.set()
            await thaw.wait()  # a SIGSTOP with room a's first command in hand

    a = lane_owner(redis_url, "a", handled, gate=freeze_room_a)
    b = lane_owner(redis_url, "b", handled)
    sender = InboxLayer(hosts=[redis_url], prefix="sb-inbox")
    await a.tick()  # a owns every shard, then stops renewing
    for n in range(20):
        await sender.send("t.3", chat_command("a", n))
        await sender.send("t.3", chat_command("c", n))
    await asyncio.wait_for(frozen.wait(), 5)
    await until(lambda: by_room(handled, "c") == list(range(20)))  # room c ran beside the stuck one
    old_token = a.owned()[3]
    await until(lambda: not a.trusts_lease(3), seconds=5)
    # b takes over: every command of room a that a held (one running, nineteen waiting in
    # its lane) comes back, in order, each marked as a redelivery; nothing of c again.
    tb = asyncio.ensure_future(b.run())
    await until(lambda: by_room(handled, "a") == list(range(20)))
    assert [again for _, token, r, _, again in handled if r == "a"] == [True] * 20
    assert all(token > old_token for _, token, r, _, _ in handled if r == "a")
    # a thaws: its lanes start nothing more (the command it had in hand was cancelled
    # when a saw its lease gone, or completes in memory at most).
    thaw.set()
    await asyncio.sleep(0.3)
    assert [n for _, token, r, n, _ in handled if token == old_token and r == "a"] in ([], [0])
    assert by_room(handled, "a")[:20] == list(range(20))
    assert by_room(handled, "c") == list(range(20))
    tb.cancel()
    for runner in list(a.runners.values()):
        runner.cancel()
    await asyncio.gather(tb, return_exceptions=True)


async def test_a_lane_past_its_backlog_refuses_further_connects_and_queues_the_rest(redis_url, monkeypatch):
    monkeypatch.setenv("INBOX_LANE_BACKLOG", "5")
    handled, stuck = [], asyncio.Event()
    shed = []

    async def hold_room_a(message):
        if message.get("__shed__"):
            shed.append(message["n"])  # InboxConsumer answers these with 1013
        elif message["params"]["room"] == "a":
            await stuck.wait()

    a = lane_owner(redis_url, "a", handled, gate=hold_room_a)
    sender = InboxLayer(hosts=[redis_url], prefix="sb-inbox")
    task = asyncio.ensure_future(a.run())
    await until(lambda: len(a.owned()) == SHARDS)
    for n in range(10):
        await sender.send("t.1", {**chat_command("a", n), "type": "gw.connect"})
    await sender.send("t.1", {**chat_command("a", 10), "type": "gw.disconnect"})
    # One in hand, five waiting; the four connects after them are refused at once; the
    # disconnect waits its turn whatever the backlog.
    await until(lambda: shed == [6, 7, 8, 9])
    stuck.set()
    await until(lambda: len(handled) == 11)
    assert [n for _, _, _, n, _ in handled if n not in shed] == [0, 1, 2, 3, 4, 5, 10]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_keyed_commands_are_handled_once_and_in_order_through_hand_overs(redis_url):
    handled = []

    async def jitter(message):
        await asyncio.sleep(0.001 * (message["n"] % 3))

    sender = InboxLayer(hosts=[redis_url], prefix="sb-inbox")
    a = lane_owner(redis_url, "a", handled, gate=jitter, timing=STEADY)
    b = lane_owner(redis_url, "b", handled, gate=jitter, timing=STEADY)
    ta = asyncio.ensure_future(a.run())
    tb = None
    for n in range(300):
        await sender.send("t.1", chat_command("abc"[n % 3], n))
        if n == 100:
            tb = asyncio.ensure_future(b.run())  # shard 1 moves to b
        if n == 200:
            tb.cancel()  # and back to a
        await asyncio.sleep(0.002)
    await until(lambda: len(handled) >= 300)
    await asyncio.sleep(0.2)
    for i, room in enumerate("abc"):
        assert by_room(handled, room) == list(range(i, 300, 3))
    ta.cancel()
    await asyncio.gather(ta, tb, return_exceptions=True)


# ----------------------------------------------------------------- batches ----
BATCHABLE = ("gw.connect", "gw.disconnect")


def batch_app(steps: list, gate=None):
    """A consumer declaring BATCHABLE: records each step it is handed as the list of its
    commands' (n, redelivery), a batch (ownership.BATCH) or a single command alike."""

    async def run(commands):
        claims = [c.pop("__claim__") for c in commands]
        try:
            if gate is not None:
                await gate(commands)
            steps.append([(c["n"], claim.redelivery) for c, (claim, _) in zip(commands, claims, strict=True)])
            for _, done in claims:
                done.set_result("ok")
        except asyncio.CancelledError:
            for _, done in claims:
                done.cancel()
            raise

    return tasks_app(lambda scope, m: run(m["commands"] if m["type"] == ownership.BATCH else [m]))


def batch_owner(redis_url, name, steps, gate=None, timing=FAST):
    return owner_of(redis_url, name, batch_app(steps, gate), timing, batch_types=BATCHABLE)


def command(kind: str, n: int, room: str = "a") -> dict:
    return {**chat_command(room, n), "type": kind}


async def test_a_lanes_consecutive_batchable_commands_are_one_step_and_nothing_moves_past_another(redis_url):
    steps, first = [], asyncio.Event()

    async def hold_the_first(commands):
        if commands[0]["n"] == 0:
            await first.wait()  # the storm's first connect in hand while the rest arrive

    a = batch_owner(redis_url, "a", steps, gate=hold_the_first)
    sender = InboxLayer(hosts=[redis_url], prefix="sb-inbox")
    task = asyncio.ensure_future(a.run())
    await until(lambda: len(a.owned()) == SHARDS)
    kinds = ["gw.connect"] * 6 + ["gw.receive"] + ["gw.connect"] * 3 + ["gw.disconnect", "gw.connect"]
    await sender.send("t.1", command(kinds[0], 0))
    await until(lambda: a.runners[1].running)
    for n, kind in enumerate(kinds[1:], start=1):
        await sender.send("t.1", command(kind, n))
    await until(lambda: a.runners[1].held == len(kinds))
    first.set()
    await until(lambda: sum(len(s) for s in steps) == len(kinds))
    # The connects that waited together went as one step; the client frame between them
    # ended the run, in its place; a disconnect joins a run of connects.
    assert [[n for n, _ in step] for step in steps] == [[0], [1, 2, 3, 4, 5], [6], [7, 8, 9, 10, 11]]
    # Each command finished once its step was: nothing left in the held record.
    held = Redis.from_url(redis_url)
    assert await held.hlen(ownership.held_key("sb-inbox", "t.1")) == 0
    await held.aclose()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_batch_in_hand_when_its_owner_dies_is_redone_whole_and_in_order(redis_url):
    steps, frozen, thaw = [], asyncio.Event(), asyncio.Event()

    async def freeze_the_batch(commands):
        if len(commands) > 1 and not frozen.is_set():
            frozen.set()
            await thaw.wait()  # a SIGSTOP with the batch in hand

    a = batch_owner(redis_url, "a", steps, gate=freeze_the_batch)
    b = batch_owner(redis_url, "b", steps)
    sender = InboxLayer(hosts=[redis_url], prefix="sb-inbox")
    for n in range(8):
        await sender.send("t.3", command("gw.connect", n))
    await sender.send("t.3", command("gw.receive", 8))
    await a.tick()  # a owns every shard, takes the nine, then stops renewing
    await asyncio.wait_for(frozen.wait(), 5)
    await until(lambda: not a.trusts_lease(3), seconds=5)
    tb = asyncio.ensure_future(b.run())
    # b redoes all a held: the frozen batch's eight (none was finished) and the frame after it.
    await until(lambda: sum(len(s) for s in steps) == 9)
    assert steps == [[(n, True) for n in range(8)], [(8, True)]]
    thaw.set()
    await asyncio.sleep(0.3)
    # a's batch was cancelled when a saw its lease gone, or completes in memory at most.
    assert steps[:2] == [[(n, True) for n in range(8)], [(8, True)]]
    assert steps[2:] in ([], [[(n, False) for n in range(8)]])
    tb.cancel()
    for runner in list(a.runners.values()):
        runner.cancel()
    await asyncio.gather(tb, return_exceptions=True)
