"""Two replicas of the chat inbox worker, as an autoscaler makes them, through nginx.

A second `python -m django inbox` is started beside the fleet's chat-inbox. Users must
not notice: each user's messages are stored in the order they were sent, every socket
sees one seq order (no 4000 for a gap), and nothing acknowledged is lost when a replica
is SIGKILLed or frozen (SIGSTOP) past its lease and thawed. The frozen replica must not
act on the shards it lost: asserted from each worker's own record of what it handled
(switchboard.ownership; docs/operations.md, "Shard ownership").
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid

import httpx
import pytest
import redis
import websockets
from wsclient import Client

from launcher import free_port

LEASE = 5.0  # INBOX_LEASE_SECONDS (the default; E2E_ENV leaves it)
RENEW = 1.0


def room_url(fleet, room):
    return f"{fleet.ws_url}/ws/chat/{room}/"


def new_room(fleet, tokens) -> str:
    slug = "r" + uuid.uuid4().hex[:10]
    res = httpx.post(
        f"{fleet.url}/api/chat/rooms/", json={"name": slug}, headers={"Authorization": f"Bearer {tokens['alice']}"}
    )
    assert res.status_code == 201, res.text
    return slug


class Replica:
    """One more chat inbox worker, with the fleet's environment and its own log."""

    def __init__(self, fleet, name: str):
        program = fleet.program("chat-inbox")
        self.name = name
        self.metrics_port = free_port()
        self.log_path = fleet.run_dir / "logs" / f"{name}.log"
        env = {
            **fleet.settings(),
            **program.env,
            "METRICS_PORT": str(self.metrics_port),
            "SERVICE_NAME": name,
        }
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(program.command, env=env, stdout=log, stderr=subprocess.STDOUT)

    def signal(self, sig) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def second_worker(fleet):
    replica = Replica(fleet, "chat-inbox-b")
    # Started, and (with shard ownership) holding some shards.
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{replica.metrics_port}/metrics", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    time.sleep(3 * RENEW + 1)  # a rebalance takes a renew interval or two
    yield replica
    replica.stop()
    time.sleep(RENEW + 1)  # the fleet's worker takes every shard back


def leases(fleet) -> dict[int, tuple[str, int]]:
    """{shard: (member, token)} from the leases in the fleet's Redis."""
    r = redis.Redis.from_url(fleet.redis_url)
    shards = int(fleet.setting("INBOX_SHARDS"))
    got = {}
    for n in range(shards):
        raw = r.get(f"sb-own:chat:{n}")
        if raw:
            member, token = raw.decode().rsplit(" ", 1)
            got[n] = (member, int(token))
    return got


def owners(fleet) -> dict[int, str]:
    return {n: member for n, (member, _) in leases(fleet).items()}


def records(fleet) -> list[dict]:
    """Every chat worker's own record of what it handled (its INBOX_RECORD_LOG lines)."""
    out = []
    for path in (fleet.run_dir / "logs").glob("chat-inbox*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if " switchboard.handled handled " in line:
                out.append(json.loads(line.split(" switchboard.handled handled ", 1)[1]))
    return out


class Sender:
    """One user's socket in one room: sends numbered messages, keeps what it received."""

    def __init__(self, fleet, tok, room, user, count):
        self.fleet, self.tok, self.room, self.user, self.count = fleet, tok, room, user, count
        self.sent: list[str] = []
        self.closes: list[int] = []
        self.received: list[dict] = []
        self.errors: list[dict] = []
        self.acked: set[str] = set()

    async def run(self, pace: float) -> None:
        client = await Client.connect(room_url(self.fleet, self.room), self.tok)
        await client.next_of("history", timeout=20)
        reader = asyncio.ensure_future(self.read(client))
        try:
            for i in range(self.count):
                cid = f"{self.user}-{i}"
                self.sent.append(cid)
                await client.send({"type": "chat_message", "message": cid, "client_id": cid})
                await asyncio.sleep(pace)
        except websockets.ConnectionClosed as exc:
            self.closes.append(exc.rcvd.code if exc.rcvd else 1006)
            reader.cancel()
            return
        try:
            await asyncio.wait_for(reader, 45)
        except TimeoutError:
            missing = [c for c in self.sent if c not in self.acked]
            raise AssertionError(
                f"{self.user} in {self.room}: {len(missing)} never acknowledged ({missing[:5]}...); errors {self.errors[:3]}"
            ) from None
        finally:
            reader.cancel()
            await client.close()

    async def read(self, client) -> None:
        try:
            while len(self.acked) < self.count:
                frame = await client.recv(45)
                if frame["type"] == "error":
                    self.errors.append(frame)
                if frame["type"] == "chat_message":
                    self.received.append(frame)
                    if frame.get("user") == self.user:
                        self.acked.add(frame["client_id"])
        except websockets.ConnectionClosed as exc:
            self.closes.append(exc.rcvd.code if exc.rcvd else 1006)


def stored(fleet, tok, room) -> list[dict]:
    """Every message of the room, in seq order (paged over REST)."""
    messages, after = [], 0
    while True:
        res = httpx.get(
            f"{fleet.url}/api/chat/rooms/{room}/messages/",
            params={"after": after, "limit": 100},
            headers={"Authorization": f"Bearer {tok}"},
        )
        res.raise_for_status()
        page = res.json()
        messages += page["messages"]
        if not page["messages"] or not page["has_more"]:
            return sorted(messages, key=lambda m: m["seq"])
        after = max(m["seq"] for m in page["messages"])


def assert_users_see_one_order(fleet, tokens, room, senders):
    for s in senders:
        assert s.closes == [], f"{s.user}'s socket was closed with {s.closes}"
    messages = stored(fleet, tokens["alice"], room)
    for s in senders:
        own = [m["client_id"] for m in messages if m["user"] == s.user]
        assert own == s.sent, f"{s.user}'s messages stored out of send order (or lost/twice)"
        seqs = [f["seq"] for f in s.received]
        assert seqs == sorted(set(seqs)), f"{s.user}'s socket saw seqs out of order or twice"


def assert_no_command_handled_by_two_owners(recs):
    owners_of: dict[str, set] = {}
    for r in recs:
        if r["outcome"] in ("refused", "late"):
            continue
        owners_of.setdefault(r["id"], set()).add((r["member"], r["token"]))
    twice = {cid: o for cid, o in owners_of.items() if len(o) > 1}
    assert twice == {}, f"{len(twice)} commands handled by two owners, e.g. {list(twice.items())[:3]}"


async def test_two_workers_keep_each_users_messages_in_send_order(fleet, tokens, second_worker):
    room = new_room(fleet, tokens)
    senders = [Sender(fleet, tokens[u], room, u, 150) for u in ("alice", "bob")]
    await asyncio.gather(*(s.run(pace=0.12) for s in senders))
    assert_users_see_one_order(fleet, tokens, room, senders)
    assert_no_command_handled_by_two_owners(records(fleet))
    # Both replicas did work: the shards were shared, not all kept by one.
    assert len(set(owners(fleet).values())) == 2


async def test_a_killed_worker_loses_its_shards_and_nothing_acknowledged_is_lost(fleet, tokens, second_worker):
    rooms = [new_room(fleet, tokens) for _ in range(4)]
    senders = [Sender(fleet, tokens["alice"], room, "alice", 40) for room in rooms]
    load = asyncio.gather(*(s.run(pace=0.5) for s in senders))  # 8 frames/s per user: well under its rate limit
    await asyncio.sleep(3)
    before = owners(fleet)
    assert any(m.split(":")[1] == str(second_worker.proc.pid) for m in before.values()), before
    second_worker.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    while True:
        now = owners(fleet)
        if len(now) == len(before) and all(m.split(":")[1] != str(second_worker.proc.pid) for m in now.values()):
            break
        assert time.monotonic() - killed_at < LEASE + 2 * RENEW + 10, f"shards not taken over: {now}"
        await asyncio.sleep(0.1)
    print(f"every shard owned again {time.monotonic() - killed_at:.1f}s after the SIGKILL")
    await load
    for room, s in zip(rooms, senders, strict=True):
        assert_users_see_one_order(fleet, tokens, room, [s])
    assert_no_command_handled_by_two_owners(records(fleet))


async def test_a_worker_frozen_past_its_lease_does_not_act_on_its_lost_shards(fleet, tokens, second_worker):
    rooms = [new_room(fleet, tokens) for _ in range(4)]
    senders = [Sender(fleet, tokens["bob"], room, "bob", 50) for room in rooms]
    load = asyncio.gather(*(s.run(pace=0.5) for s in senders))  # 8 frames/s per user: well under its rate limit
    await asyncio.sleep(2)
    pid = str(second_worker.proc.pid)
    frozen = {(n, token) for n, (m, token) in leases(fleet).items() if m.split(":")[1] == pid}
    assert frozen
    second_worker.signal(signal.SIGSTOP)
    await asyncio.sleep(LEASE + 3 * RENEW)
    assert all(m.split(":")[1] != pid for m in owners(fleet).values()), "the frozen worker kept its leases"
    thawed_at = time.time()
    second_worker.signal(signal.SIGCONT)
    await load
    for room, s in zip(rooms, senders, strict=True):
        assert_users_see_one_order(fleet, tokens, room, [s])
    recs = records(fleet)
    assert_no_command_handled_by_two_owners(recs)
    acted = [
        r
        for r in recs
        if r["member"].split(":")[1] == pid
        and (r["shard"], r["token"]) in frozen
        and r["t"] > thawed_at
        and r["outcome"] not in ("refused", "late")
    ]
    assert acted == [], f"the thawed worker acted on shards it had lost: {acted[:3]}"
