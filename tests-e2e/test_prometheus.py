"""Debian's real Prometheus against the running fleet: it scrapes every process from
the config deploy/prometheus/localconfig.py makes out of the launcher's ports, loads
the alert rules, and what its HTTP API reports matches what this test did:
connections by route, and the rate and count of chat messages."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid

import httpx
import pytest
from localconfig import write
from wsclient import Client

from launcher import SERVICES, free_port
from switchboard.config import env_int

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
SCRAPE = "1s"


@pytest.fixture(scope="module")
def prometheus(fleet, tmp_path_factory):
    out = tmp_path_factory.mktemp("prometheus")
    config = write(fleet.run_dir, out, interval=SCRAPE)
    port = free_port()
    log = open(out / "prometheus.log", "w")  # noqa: SIM115 (open for the fixture's lifetime)
    proc = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={out / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (out / "prometheus.log").read_text()
            assert time.time() < deadline, "prometheus did not become ready"
            time.sleep(0.2)
        yield Prom(url)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class Prom:
    def __init__(self, url: str):
        self.url = url

    def api(self, path: str, **params) -> dict:
        res = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=5)
        res.raise_for_status()
        body = res.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> dict[tuple, float]:
        params = {"query": expr} | ({"time": at} if at else {})
        result = self.api("query", **params)["result"]
        return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in result}

    def scalar(self, expr: str, at: float | None = None) -> float:
        values = self.query(expr, at)
        return sum(values.values())

    async def until(self, expr: str, predicate, timeout: float = 15) -> float:
        """The value of `expr` once `predicate` holds (scrapes lag by up to a second)."""
        deadline = time.time() + timeout
        while True:
            value = self.scalar(expr)
            if predicate(value) or time.time() > deadline:
                return value
            await asyncio.sleep(0.25)


async def test_prometheus_scrapes_every_process_and_loads_the_rules(prometheus, fleet):
    deadline = time.time() + 20
    while True:
        targets = prometheus.api("targets")["activeTargets"]
        down = [t["labels"]["instance"] for t in targets if t["health"] != "up"]
        if targets and not down:
            break
        assert time.time() < deadline, f"targets not up: {down}"
        await asyncio.sleep(0.5)
    scraped = {t["labels"]["instance"] for t in targets}
    # Every process of the fleet: its own /metrics, or a third-party server's on its HTTP port (Flower).
    assert scraped == {p.name for p in fleet.programs if p.kind and (p.metrics_port or p.http_port)}
    jobs = {t["labels"]["job"] for t in targets}
    assert {"ws-gateway", "chat-http", "chat-inbox"} <= jobs
    rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
    assert {r["name"] for r in rules} >= {"SwitchboardGatewayDown", "SwitchboardInboxBacklog"}
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
    # A healthy fleet fires nothing critical.
    firing = [r["name"] for r in rules if r["state"] == "firing" and r["labels"].get("severity") == "critical"]
    assert firing == []


async def test_connections_by_route_and_message_rate_match_the_traffic(prometheus, fleet, tokens):
    await prometheus.until('count(up{job="ws-gateway"} == 1)', lambda v: v == fleet.ws_gateway_processes)
    conns = 'sum(switchboard_gateway_connections{route="%s"})'
    base_chat = prometheus.scalar(conns % "chat")
    base_dash = prometheus.scalar(conns % "dashboard")

    room = "prom" + uuid.uuid4().hex[:8]
    res = httpx.post(
        f"{fleet.url}/api/chat/rooms/", json={"name": room}, headers={"Authorization": f"Bearer {tokens['alice']}"}
    )
    assert res.status_code == 201, res.text
    chatters = []
    for who in ("alice", "bob", "alice", "bob", "admin"):
        c = await Client.connect(f"{fleet.ws_url}/ws/chat/{room}/", tokens[who])
        await c.next_of("history")
        chatters.append(c)
    viewers = [await Client.connect(f"{fleet.ws_url}/ws/dashboard/", tokens["admin"]) for _ in range(2)]

    got_chat = await prometheus.until(conns % "chat", lambda v: v == base_chat + 5)
    got_dash = await prometheus.until(conns % "dashboard", lambda v: v == base_dash + 2)
    assert (got_chat - base_chat, got_dash - base_dash) == (5, 2)
    # Spread over both gateways, summed by Prometheus.
    by_gateway = prometheus.query('sum by (instance) (switchboard_gateway_connections{route="chat"})')
    assert len(by_gateway) == fleet.ws_gateway_processes

    frames_in = 'sum(switchboard_gateway_frames_total{route="chat", direction="in"})'
    handled = 'sum(switchboard_inbox_commands_total{service="chat", type="frame.chat_message", outcome="ok"})'
    in0, handled0 = prometheus.scalar(frames_in), prometheus.scalar(handled)

    # 5 messages a second for 10 seconds from one socket (under its 10/s limit).
    per_second, seconds = 5, 10
    sender = chatters[0]
    start = time.time()
    for i in range(per_second * seconds):
        await sender.send({"type": "chat_message", "message": f"m{i}", "client_id": f"prom-{i}"})
        await asyncio.sleep(max(0.0, start + (i + 1) / per_second - time.time()))
    end = time.time()
    sent = per_second * seconds
    await chatters[-1].next_of("chat_message", client_id=f"prom-{sent - 1}", timeout=10)

    assert await prometheus.until(frames_in, lambda v: v - in0 >= sent) - in0 == sent
    assert await prometheus.until(handled, lambda v: v - handled0 >= sent) - handled0 == sent
    # The rate over the sending window, as a dashboard panel computes it.
    await asyncio.sleep(2)  # let the last scrape of the window land
    rate = prometheus.scalar("sum(rate(switchboard_gateway_frames_total{route='chat', direction='in'}[8s]))", at=end)
    print(f"prometheus: chat frames in at {rate:.2f}/s (sent {per_second}/s); connections chat+5 dashboard+2")
    assert per_second * 0.7 <= rate <= per_second * 1.3, rate
    # Each message was sent out to the five sockets of the room.
    out_rate = prometheus.scalar(
        "sum(rate(switchboard_gateway_frames_total{route='chat', direction='out'}[8s]))", at=end
    )
    assert out_rate >= per_second * 5 * 0.7, out_rate

    for c in chatters + viewers:
        await c.close()
    assert await prometheus.until(conns % "chat", lambda v: v == base_chat) == base_chat


async def test_inbox_backlog_reaches_prometheus_with_the_labels_the_alerts_group_by(prometheus, fleet):
    """Every inbox service's HTTP process exports one series per shard, and the
    `service` and `shard` labels survive the scrape (the target also carries a
    `service` label): SwitchboardInboxBacklog groups by both, ...WorkerStalled joins on
    `service`."""
    expr = "count by (service) (max by (service, shard) (switchboard_inbox_backlog_commands))"
    await prometheus.until(f"count({expr})", lambda v: v >= 4)
    shards = {dict(labels)["service"]: n for labels, n in prometheus.query(expr).items()}
    inbox_services = {s.name for s in SERVICES if s.inbox}
    assert shards == dict.fromkeys(inbox_services, env_int("INBOX_SHARDS"))
    joined = prometheus.query(
        "switchboard_inbox_last_command_timestamp_seconds"
        " and on(service) (max by (service) (switchboard_inbox_backlog_commands) >= 0)"
    )
    # (every process exports the heartbeat gauge, at 0 outside workers: the alert's `> 0`)
    assert {f"{s}-inbox" for s in inbox_services} <= {dict(labels)["job"] for labels in joined}
