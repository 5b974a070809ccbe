"""A reconnect storm into one chat room does not hold back another room on the same
inbox shard (issue 21): through nginx, STORM sockets of distinct users reconnect into
room A at once, as after a gateway restart, while a user opens room B, a room whose
key hashes onto A's shard. B's user gets the accept (history, then the online list)
before the gateway's CONNECT_TIMEOUT_SECONDS closes the socket with 1013; and every
client of A, retrying on 1013 with `since` as a real client does, ends up with exactly
the messages after its `since`, none missing and none twice, including those posted
during the storm.

On its own fleet: one client address holds every socket here, so the per-IP socket cap
is raised (as the bench does), and the one client process reads them all, so is the
slow-client bound; everything else is the e2e fleet's (CONNECT_TIMEOUT 3 s,
INBOX_CAPACITY and the shard count at their defaults)."""

from __future__ import annotations

import asyncio
import random
import resource

import httpx
import pytest
import websockets
from fleetenv import E2E_ENV, tracebacks
from test_chat import room_url
from wsclient import Client, token

from launcher import Fleet, free_port
from switchboard.routes import shard_channel
from switchboard.tokens import Identity, issue

STORM = 1500  # sockets into room A, one distinct user each
BEFORE = 6  # messages in A before the storm
DURING = 6  # messages posted into A while the storm runs
# Sockets that read only at the end (the room's notices pile up meanwhile): no keepalive
# pings, whose pongs would wait behind those frames, and no receive-queue bound.
QUIET = {"ping_interval": None, "max_queue": None}
DEEP = 400  # B connects once this many of A's sockets wait for chat's accept


@pytest.fixture(scope="module")
def storm_fleet(tmp_path_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # nginx and the client inherit it
    run_dir = tmp_path_factory.mktemp("storm-fleet")
    # One client process reads every socket, slower than the fleet writes on a loaded
    # machine: the slow-client bound is not what is tested here.
    env = {**E2E_ENV, "WS_MAX_SOCKETS_PER_IP": "100000", "WS_SEND_BUFFER_BYTES": str(16 * 2**20)}
    fleet = Fleet(run_dir=run_dir, gateway_port=free_port(), ws_gateway_processes=2, env=env)
    try:
        fleet.start(wait=120)
        yield fleet
    finally:
        fleet.stop()
    found = tracebacks(run_dir / "logs")
    assert not found, f"{len(found)} traceback(s) in the storm fleet's logs:\n" + "\n".join(found[:10])


def create_room(fleet, tok: str, slug: str) -> None:
    res = httpx.post(f"{fleet.url}/api/chat/rooms/", json={"name": slug}, headers={"Authorization": f"Bearer {tok}"})
    assert res.status_code == 201, res.text


def room_on_shard(shard: str, shards: int, taken: set[str]) -> str:
    """A fresh room slug whose commands go to `shard`, by the gateway's own function."""
    n = 0
    while True:
        slug = f"stormb{random.randrange(10**9)}"
        if slug not in taken and shard_channel("chat", slug, shards) == shard:
            return slug
        n += 1
        assert n < 10_000


class Resumer:
    """One storm client: connects with its `since`, and on a 1013 (or a refused
    handshake) comes back with `since` = the last seq it has, with backoff, until
    accepted; `seqs` is every message seq it was shown, in order."""

    def __init__(self, url: str, tok: str, since: int | None):
        self.url, self.tok, self.since = url, tok, since
        self.seqs: list[int] = []
        self.client: Client | None = None
        self.attempts = 0
        self.closes: list[int] = []
        self.waiting = False  # handshake done, the service's accept not yet here

    def resume_point(self) -> int | None:
        return self.seqs[-1] if self.seqs else self.since

    async def run(self, deadline: float) -> None:
        delay = 0.5
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            self.attempts += 1
            since = self.resume_point()
            url = self.url + (f"?since={since}" if since is not None else "")
            try:
                client = await Client.connect(url, self.tok, **QUIET)
                self.waiting = True
                first = await client.next_of("history", timeout=60)
                self.waiting = False
                self.seqs += [m["seq"] for m in first["messages"]]
                await client.next_of("online_users", timeout=60)
                self.client = client
                return
            except websockets.ConnectionClosed as exc:
                self.closes.append(exc.rcvd.code if exc.rcvd else 1006)
            except (OSError, TimeoutError, websockets.InvalidHandshake):
                self.closes.append(0)
            self.waiting = False
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 8)
        raise AssertionError(f"never accepted in {self.attempts} attempts: closes {self.closes[-5:]}")

    async def follow(self, last: int, deadline: float) -> None:
        """Read live messages until seq `last` is shown; a dropped socket comes back
        with `since`, as a real client does."""
        while not self.seqs or self.seqs[-1] < last:
            try:
                got = await self.client.next_of("chat_message", timeout=60)
            except websockets.ConnectionClosed:
                await self.run(deadline)
                continue
            self.seqs.append(got["seq"])


async def storm_waiting(storm: list[Resumer], depth: int, running: asyncio.Future, timeout: float = 60) -> int:
    """Wait until `depth` of the storm's sockets are open and waiting for chat's accept
    (or the storm is in, or time runs out): B's connect then comes while chat's worker
    has that many of A's connects to do, not after it has caught up."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    waiting = 0
    while loop.time() < end and not running.done():
        waiting = sum(r.waiting for r in storm)
        if waiting >= depth:
            break
        await asyncio.sleep(0.05)
    return waiting


async def test_a_storm_in_one_room_does_not_hold_back_a_connect_to_another_room_on_its_shard(storm_fleet):
    fleet = storm_fleet
    alice, bob = token(fleet.url, "alice"), token(fleet.url, "bob")
    shards = int(fleet.setting("INBOX_SHARDS"))
    room_a = f"storma{random.randrange(10**9)}"
    room_b = room_on_shard(shard_channel("chat", room_a, shards), shards, {room_a})
    create_room(fleet, alice, room_a)
    create_room(fleet, alice, room_b)

    poster = await Client.connect(room_url(fleet, room_a), alice, **QUIET)
    await poster.next_of("history")
    for i in range(BEFORE):
        await poster.send({"type": "chat_message", "message": f"before {i}", "client_id": f"b{i}"})
        await poster.next_of("chat_message", client_id=f"b{i}")

    keys = fleet.setting("SWITCHBOARD_JWT_KEYS")
    url_a = room_url(fleet, room_a)
    # Reconnecting clients: most come back with a `since` (anywhere in what they had),
    # some fresh (history: the last HISTORY_LIMIT, here all of them).
    storm = [
        Resumer(url_a, issue(Identity(900_000 + i, f"storm{i:04d}", False), keys=keys), (i % 8) - 1 if i % 8 else None)
        for i in range(STORM)
    ]
    loop = asyncio.get_running_loop()
    running = asyncio.gather(*(r.run(loop.time() + 240) for r in storm))

    async def post_during():
        for i in range(DURING):
            await poster.send({"type": "chat_message", "message": f"during {i}", "client_id": f"d{i}"})
            await asyncio.sleep(0.5)

    posting = asyncio.ensure_future(post_during())
    depth = await storm_waiting(storm, DEEP, running)
    assert not running.done(), "the storm was over before B connected: raise STORM"

    # Room B, on A's shard: its user sees the room (history, then who is online) and is
    # not closed with 1013 (CONNECT_TIMEOUT_SECONDS) or refused as busy.
    b = await Client.connect(room_url(fleet, room_b), bob, **QUIET)
    try:
        history = await b.next_of("history", timeout=30)
        online = await b.next_of("online_users", timeout=30)
    except websockets.ConnectionClosed as exc:
        running.cancel()
        posting.cancel()
        await asyncio.gather(running, posting, return_exceptions=True)
        pytest.fail(
            f"room B's connect was closed with {exc.rcvd.code if exc.rcvd else None} "
            f"while {depth} of room A's sockets waited for their accept"
        )
    assert history["messages"] == [] and online["users"] == ["bob"]
    print(f"\nB accepted while {depth} of A's sockets waited for theirs")

    await running
    await posting
    closes = [c for r in storm for c in r.closes]
    print(f"storm: {len(closes)} retries, closes {sorted(set(closes))}")
    last = (await poster.next_of("chat_message", client_id=f"d{DURING - 1}", timeout=120))["seq"]
    assert last == BEFORE + DURING
    await asyncio.gather(*(r.follow(last, loop.time() + 120) for r in storm))
    wrong = [(r.since, r.seqs) for r in storm if r.seqs != list(range((r.since or 0) + 1, last + 1))]
    assert not wrong, f"{len(wrong)} storm clients shown a gap or a duplicate, e.g. {wrong[:3]}"
    await asyncio.gather(b.close(), poster.close(), *(r.client.close() for r in storm))
