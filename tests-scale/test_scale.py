"""The scale test: the compose fleet with several replicas of every process kind
(composegen.scale_test_replicas()), under load through the proxy, with faults struck
at single replicas. One row per fault and load (tests-e2e/faults/campaign.py's loads:
chat in three rooms, a collab document with two Yjs editors and a JSON one):

* no fault: every client sees one order per room, nothing acknowledged lost or shown
  twice, collab converges with the store;
* SIGKILL one replica of each worker kind in turn (docker restarts it): the same, and
  for inbox workers the seconds until every shard had an owner again;
* scale chat-inbox 3 -> 1 -> 3 under load; partition one chat-inbox replica from the
  network and heal it: no command handled by two owners, from each worker's own record
  (/handled on its metrics port);
* a report requested through one report HTTP replica, made by a Celery worker,
  downloaded through the other HTTP replica.

Rows that need several consumers of one inbox wait for shard ownership
(fleet.INBOX_SHARD_OWNERSHIP): until then the inbox workers run one replica each and
those rows skip, saying so.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from campaign import run_fault
from composegen import scale_test_replicas
from fleet import INBOX_SHARD_OWNERSHIP, PROCESSES, Role, process
from stack import DOCKER, ROOT

from switchboard.config import default
from switchboard.routes import load as load_routes

ROOMS = ("chat", "chat#2", "chat#3")
LOADS = (*ROOMS, "collab")
SHARDS = int(default("INBOX_SHARDS"))  # compose.yaml's ${INBOX_SHARDS:-4}, the test env sets none
REPLICAS = scale_test_replicas()
WORKERS = [p.name for p in PROCESSES if p.role == Role.WORKER]
# The campaign's load that exercises a worker kind, where there is one beyond chat and
# collab. Not reports: a report running on a killed Celery worker comes back after
# CELERY_VISIBILITY_TIMEOUT_SECONDS (an hour in compose); the local fault campaign
# runs that row with 10 s, and the last test here makes a report after the kills.
OWN_LOAD = {"notification-inbox": "notifications"}
OWNED_WITHIN = 60.0
needs_ownership = pytest.mark.skipif(
    not INBOX_SHARD_OWNERSHIP, reason="inbox workers run one replica each until shard ownership holds"
)


def inboxes(service: str) -> list[str]:
    return sorted({r.inbox for r in load_routes().websocket if r.service == service and r.inbox})


# Evaluated by one redis-cli inside the Redis container every 100 ms: Redis's TIME and
# every lease asked for, as one line "<unix seconds>|<lease>|<lease>|..." ("" when none).
WATCH_LUA = """
local t = redis.call('TIME')
local out = {t[1] .. '.' .. string.format('%06d', tonumber(t[2]))}
for _, k in ipairs(KEYS) do out[#out + 1] = redis.call('GET', k) or '' end
return table.concat(out, '|')
"""
WATCH_INTERVAL = 0.1
WATCH_LIMIT = 600.0
TIMELINES = Path(os.environ.get("SCALE_JSON", ROOT / "var" / "scale.json")).with_name("scale-leases.json")


class LeaseWatch:
    """Every shard lease of a service's inboxes, sampled inside the Redis container.

    One long-running `redis-cli -r -1 -i 0.1 EVAL` (one docker exec for the whole row,
    not one per sample, which on a busy 2-core machine took up to a second each): every
    sample carries Redis's own TIME. Containers share the host's clock, so a fault's
    instant taken with time.time() on the host is on the same clock as the samples."""

    def __init__(self, stack, inboxes_: list[str]):
        self.inboxes = inboxes_
        keys = [f"sb-own:{inbox}:{n}" for inbox in inboxes_ for n in range(SHARDS)]
        redis = stack.containers("redis")[0]
        # Bounded (a row takes a few minutes at most), so it ends by itself even if the
        # exec outlives this client.
        repeat = str(int(WATCH_LIMIT / WATCH_INTERVAL))
        cmd = [DOCKER, "exec", redis, "redis-cli", "--raw", "-r", repeat, "-i", str(WATCH_INTERVAL)]
        self.proc = subprocess.Popen(
            [*cmd, "EVAL", WATCH_LUA, str(len(keys)), *keys], stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.samples: list[tuple[float, dict[str, list[str]]]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 30
        while not self.samples:
            assert self.proc.poll() is None and time.monotonic() < deadline, "the lease watch did not start"
            time.sleep(0.05)

    def _read(self) -> None:
        for line in self.proc.stdout:
            t, *values = line.rstrip("\n").split("|")
            if len(values) != len(self.inboxes) * SHARDS:
                continue  # an error line (the script's reply is always whole)
            per = {i: values[k * SHARDS : (k + 1) * SHARDS] for k, i in enumerate(self.inboxes)}
            with self._lock:
                self.samples.append((float(t), per))

    def since(self, t0: float) -> list[tuple[float, dict[str, list[str]]]]:
        with self._lock:
            return [s for s in self.samples if s[0] >= t0]

    def latest(self) -> dict[str, list[str]]:
        with self._lock:
            return self.samples[-1][1]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Owned:
    """Seconds from `mark()` (the fault's instant) until every shard of a service's
    inboxes has an owner again that is none of `gone` (container hostnames whose leases
    must pass to another process), and each of `spread` (hostnames of new replicas) owns
    one at least; from the LeaseWatch's samples, so on Redis's clock."""

    def __init__(self, stack, service: str, gone: set[str] = frozenset(), spread: set[str] = frozenset()):
        self.service, self.gone, self.spread = service, set(gone), set(spread)
        self.watch = LeaseWatch(stack, inboxes(service))
        self.mark()

    def mark(self) -> None:
        self.before = self.watch.latest()
        self.started = time.time()

    def owned(self, leases: dict[str, list[str]]) -> bool:
        for inbox, now in leases.items():
            for before, lease in zip(self.before[inbox], now, strict=True):
                if not lease:
                    return False
                if before.split(":")[0] in self.gone and lease == before:
                    return False
            if not self.spread <= {lease.split(":")[0] for lease in now}:
                return False
        return True

    async def wait(self) -> float:
        try:
            while True:
                at = next((t for t, leases in self.watch.since(self.started) if self.owned(leases)), None)
                if at is not None:
                    self.save(at)
                    return round(at - self.started, 1)
                assert time.time() - self.started < OWNED_WITHIN, f"shards not owned again: {self.before}"
                await asyncio.sleep(WATCH_INTERVAL)
        finally:
            self.watch.stop()

    def save(self, at: float) -> None:
        """Each lease change from the fault on (seconds after it), for reading a row."""
        changes, last = [], self.before
        for t, leases in self.watch.since(self.started):
            for inbox, now in leases.items():
                for n, (was, lease) in enumerate(zip(last[inbox], now, strict=True)):
                    if was != lease:
                        changes.append([round(t - self.started, 2), f"{inbox}.{n}", lease])
            last = leases
        old = json.loads(TIMELINES.read_text()) if TIMELINES.exists() else {}
        old[f"{self.service} @ {self.started:.3f}"] = {
            "gone": sorted(self.gone), "before": self.before, "owned_at": round(at - self.started, 2), "changes": changes
        }  # fmt: skip
        TIMELINES.parent.mkdir(parents=True, exist_ok=True)
        TIMELINES.write_text(json.dumps(old, indent=1))


def hostname(stack, container: str) -> str:
    return stack.docker("inspect", "--format", "{{.Config.Hostname}}", container).strip()


def check(rows, *, order: bool = True) -> None:
    for r in rows:
        assert r.lost == 0 and r.duplicated == 0, r
        assert r.note != "not recovered", r
        if r.load.startswith("chat") and order:
            assert r.order_violations == 0, r
        if r.load == "collab":
            assert r.converged == "yes", r


async def strike(stack, tokens, scale_report, fault: str, inject, loads=LOADS, *, order=True):
    """One row per load: `inject()` is the fault, struck while the load runs; it may
    return the seconds until every shard was owned again, or a coroutine that measures
    them while the campaign measures the load's recovery."""
    measured = {}

    async def _inject(active):
        result = await inject()
        if asyncio.iscoroutine(result):
            measured["task"] = asyncio.ensure_future(result)
        elif result is not None:
            measured["seconds"] = result
        return ""

    rows = await run_fault(stack, tokens, fault, _inject, loads=loads)
    owned = (await measured["task"]) if "task" in measured else measured.get("seconds")
    for r in rows:
        r.seconds_to_owned = owned
    scale_report.rows.extend(rows)
    check(rows, order=order)
    return rows


def test_the_fleet_runs_the_scale_test_replicas(stack):
    for name, n in REPLICAS.items():
        assert len(stack.containers(name)) == n, name
    assert REPLICAS["ws-gateway"] >= 3 and REPLICAS["report-worker-http"] >= 2
    assert REPLICAS["report-worker-celery"] >= 2 and REPLICAS["dashboard-publisher"] >= 2


async def test_no_fault(stack, tokens, scale_report):
    async def nothing():
        await asyncio.sleep(5)

    await strike(stack, tokens, scale_report, "none (load only)", nothing)


@pytest.mark.parametrize("kind", WORKERS)
async def test_sigkill_one_replica(stack, tokens, scale_report, kind):
    victim = stack.containers(kind)[0]
    p = process(kind)
    sharded = p.django == ("inbox",)
    owned = Owned(stack, p.service.name, gone={hostname(stack, victim)}) if sharded and INBOX_SHARD_OWNERSHIP else None

    async def kill():
        if owned:
            owned.mark()
        stack.crash(victim)  # docker restarts it (restart: unless-stopped)
        return owned.wait() if owned else None

    loads = LOADS + ((OWN_LOAD[kind],) if kind in OWN_LOAD else ())
    # Without shard ownership an inbox worker's command in hand dies with it and its
    # client resends it after later ones: order is asserted once ownership holds.
    await strike(
        stack, tokens, scale_report, f"SIGKILL 1 of {REPLICAS[kind]} {kind}", kill, loads,
        order=INBOX_SHARD_OWNERSHIP or not sharded,
    )  # fmt: skip
    stack.wait_healthy(kind)


@needs_ownership
async def test_scale_chat_inbox_down_and_up(stack, tokens, scale_report):
    n = REPLICAS["chat-inbox"]
    for target in (1, n):
        before = {c: hostname(stack, c) for c in stack.containers("chat-inbox")}

        async def scale(target=target, before=before):
            owned = Owned(stack, "chat")
            owned.mark()
            await asyncio.to_thread(
                stack.compose, "up", "-d", "--no-deps", "--no-recreate", "--scale", f"chat-inbox={target}", "chat-inbox"
            )
            now = {c: hostname(stack, c) for c in stack.containers("chat-inbox")}
            owned.gone = {h for c, h in before.items() if c not in now}  # stopped: their shards pass on
            owned.spread = {h for c, h in now.items() if c not in before}  # started: each takes some
            return owned.wait()

        await strike(stack, tokens, scale_report, f"scale chat-inbox {len(before)} -> {target}", scale, ROOMS)
        stack.wait_healthy("chat-inbox")


def handled(stack, container: str) -> list[dict]:
    probe = "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9100/handled',timeout=10).read().decode())"
    return [json.loads(line) for line in stack.docker("exec", container, "python", "-c", probe).splitlines() if line]


@needs_ownership
async def test_partition_one_chat_inbox_replica(stack, tokens, scale_report):
    victim = stack.containers("chat-inbox")[0]
    network = next(iter(json.loads(stack.docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", victim))))
    lease = float(default("INBOX_LEASE_SECONDS"))

    async def partition():
        # Cut off, its shards pass to the others, it stays cut off a lease longer (it
        # may not act on them meanwhile), then it comes back: all under load.
        owned = Owned(stack, "chat", gone={hostname(stack, victim)})
        owned.mark()
        stack.docker("network", "disconnect", network, victim)
        seconds = await owned.wait()
        await asyncio.sleep(lease)
        stack.docker("network", "connect", network, victim)
        return seconds

    await strike(stack, tokens, scale_report, "partition 1 chat-inbox, heal", partition, ROOMS)
    stack.wait_healthy("chat-inbox")
    # Each worker's own record: a command acted on (not refused by a fence) by two
    # owners would be one handled twice.
    acted: dict[str, set[tuple[str, int]]] = {}
    for c in stack.containers("chat-inbox"):
        for e in handled(stack, c):
            if e["outcome"] != "refused":
                acted.setdefault(e["id"], set()).add((e["member"], e["token"]))
    twice = {cid: owners for cid, owners in acted.items() if len({m for m, _ in owners}) > 1}
    assert acted and not twice, twice


def http_in(stack, container: str, method: str, path: str, tok: str, body: dict | None = None) -> tuple[int, bytes]:
    """A request to one replica's own port, from inside its container (the proxy would
    pick a replica itself); the answer comes back base64-encoded (a report is binary)."""
    probe = (
        "import base64,json,sys,urllib.request,urllib.error\n"
        f"r=urllib.request.Request('http://127.0.0.1:8000{path}',method='{method}',"
        f"data={json.dumps(json.dumps(body)) + '.encode()' if body is not None else 'None'},"
        f"headers={{'Authorization':'Bearer {tok}','Content-Type':'application/json'}})\n"
        "try:\n res=urllib.request.urlopen(r,timeout=20); code=res.status; data=res.read()\n"
        "except urllib.error.HTTPError as e:\n code=e.code; data=e.read()\n"
        "print(code, base64.b64encode(data).decode())\n"
    )
    code, _, data = stack.docker("exec", container, "python", "-c", probe).strip().partition(" ")
    return int(code), base64.b64decode(data)


def test_a_report_made_through_one_http_replica_downloads_through_the_other(stack, tokens, scale_report):
    first, second = stack.containers("report-worker-http")[:2]
    code, body = http_in(stack, first, "POST", "/api/reports/", tokens["alice"], {"type": "orders_summary"})
    assert code == 202, body
    task = json.loads(body)["task_id"]
    deadline = time.monotonic() + 90
    while True:
        code, body = http_in(stack, second, "GET", f"/api/reports/{task}/", tokens["alice"])
        status = json.loads(body)
        if status.get("status") == "completed":
            break
        assert time.monotonic() < deadline and status.get("status") != "failed", status
        time.sleep(1)
    code, data = http_in(stack, second, "GET", f"/api/reports/{task}/download/", tokens["alice"])
    assert code == 200 and data, (code, data[:200])
    makers = [c for c in stack.containers("report-worker-celery") if task in stack.logs(c)]
    print(
        f"\nreport {task}: requested on {first[:12]}, made by {[m[:12] for m in makers]}, downloaded on {second[:12]}"
    )
