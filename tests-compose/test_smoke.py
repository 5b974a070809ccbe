"""Smoke suite of the compose stack, through the gateway's port on 127.0.0.1 only:
every container healthy, WS_GATEWAY_REPLICAS (3) ws-gateway replicas from `--scale`, login,
every service's routes, sockets spread over every replica and chat crossing them, a restart of a service and the loss of a gateway replica losing no
message; collab and dashboard when the fleet has them (parametrized by SERVICES)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import websockets
from composegen import WS_GATEWAY_REPLICAS
from wsclient import Client

from launcher import SERVICES
from switchboard.routes import load as load_routes

NAMES = {s.name for s in SERVICES}
INBOX_SERVICES = [s.name for s in SERVICES if s.inbox]


def auth(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


def new_room(stack, tokens) -> str:
    slug = "r" + uuid.uuid4().hex[:10]
    res = httpx.post(f"{stack.url}/api/chat/rooms/", json={"name": slug}, headers=auth(tokens["alice"]), timeout=15)
    assert res.status_code == 201, res.text
    return slug


def room_url(stack, room: str, **params) -> str:
    q = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{stack.ws_url}/ws/chat/{room}/" + (f"?{q}" if q else "")


async def send_until_stored(sender: Client, texts: dict[str, str], timeout: float = 90) -> dict[str, int]:
    """Send each message (client_id -> text) and resend the unacknowledged ones every
    10 s until the echo carries a seq, as a real client does; client_id makes a resend
    harmless. Returns client_id -> seq."""
    seqs: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(seqs) < len(texts):
        for cid, text in texts.items():
            if cid not in seqs:
                await sender.send({"type": "chat_message", "message": text, "client_id": cid})
        round_end = min(deadline, loop.time() + 10)
        while len(seqs) < len(texts) and loop.time() < round_end:
            try:
                frame = await sender.recv(max(0.1, round_end - loop.time()))
            except TimeoutError:
                break
            if frame["type"] == "chat_message" and frame.get("client_id") in texts:
                seqs[frame["client_id"]] = frame["seq"]
        assert loop.time() < deadline, f"not stored: {set(texts) - set(seqs)}"
    return seqs


def chat_seqs(client: Client) -> list[int]:
    return [f["seq"] for f in client.frames if f["type"] == "chat_message"]


def test_every_container_is_healthy_with_the_scaled_gateway_replicas(stack):
    print("\nNOTE: the gateway here is the local stand-in (Debian nginx, config generated from routes.toml),")
    print("      not nginxproxy/nginx-proxy, which cannot be pulled on this machine.")
    assert len(stack.containers("ws-gateway")) == WS_GATEWAY_REPLICAS == 3
    for cid in stack.containers():
        state = stack.health(cid)
        name = stack.docker("inspect", "--format", "{{.Name}}", cid).strip()
        if "-migrate" in name:
            assert stack.docker("inspect", "--format", "{{.State.ExitCode}}", cid).strip() == "0", name
        else:
            assert state == "healthy", f"{name}: {state}"


def test_login_gives_a_token_and_a_wrong_password_does_not(stack):
    res = httpx.post(f"{stack.url}/api/auth/token/", json={"username": "alice", "password": "switchboard"})
    assert res.status_code == 200 and res.json()["access"]
    res = httpx.post(f"{stack.url}/api/auth/token/", json={"username": "alice", "password": "nope"})
    assert 400 <= res.status_code < 500


@pytest.mark.parametrize("route", [r for r in load_routes().http if not r.websocket], ids=lambda r: r.prefix)
def test_every_http_route_answers_through_the_gateway(stack, tokens, route):
    res = httpx.get(f"{stack.url}{route.prefix}", headers=auth(tokens["admin"]), timeout=15)
    assert res.status_code < 500, f"{route.prefix} -> {route.service}: {res.status_code}"


def test_the_web_ui_and_its_assets_are_served(stack):
    page = httpx.get(f"{stack.url}/", timeout=15, follow_redirects=True)
    assert page.status_code == 200 and "<html" in page.text.lower()
    # The editor bundle is built on the host by `make web` and shipped in the image.
    bundle = httpx.get(f"{stack.url}/static/ws_gateway/dist/editor.js", timeout=15)
    assert bundle.status_code == 200 and len(bundle.content) > 10_000


def sockets_per_replica(stack) -> dict[str, float]:
    """Open sockets each ws-gateway replica holds, from its own /metrics."""
    return {cid: stack.metric(cid, "switchboard_gateway_connections") for cid in stack.containers("ws-gateway")}


async def test_sockets_spread_over_every_replica_and_a_chat_message_crosses_them(stack, tokens):
    room = new_room(stack, tokens)
    before = sockets_per_replica(stack)
    clients = []
    n = 2 * WS_GATEWAY_REPLICAS  # the gateway balances round robin: two sockets per replica
    for i in range(n):
        c = await Client.connect(room_url(stack, room), tokens["alice" if i % 2 else "bob"])
        await c.next_of("history", timeout=15)
        clients.append(c)
    after = sockets_per_replica(stack)
    gained = {cid[:12]: after[cid] - before.get(cid, 0) for cid in after}
    print(f"\nnew sockets per ws-gateway replica: {gained}")
    assert len(gained) == WS_GATEWAY_REPLICAS and all(g >= 1 for g in gained.values()), gained
    for i, c in enumerate(clients):
        await send_until_stored(c, {f"x{i}": f"from {i}"})
    for c in clients:
        for _ in range(n):
            await c.next_of("chat_message", timeout=15)
    orders = [[f["client_id"] for f in c.frames if f["type"] == "chat_message"] for c in clients]
    assert all(sorted(o) == sorted(f"x{i}" for i in range(n)) for o in orders)
    # Every socket, whichever replica holds it, sees every message, each once, in the
    # room's order: each was sent on one replica and reached the sockets of all three.
    assert all(chat_seqs(c) == list(range(1, n + 1)) for c in clients)
    for c in clients:
        await c.close()


@pytest.mark.timeout(240)
async def test_restarting_chat_keeps_every_socket_and_loses_no_message(stack, tokens):
    room = new_room(stack, tokens)
    alice = await Client.connect(room_url(stack, room), tokens["alice"])
    bob = await Client.connect(room_url(stack, room), tokens["bob"])
    for c in (alice, bob):
        await c.next_of("history", timeout=15)
    restart = asyncio.create_task(asyncio.to_thread(stack.compose, "restart", "chat-http", "chat-inbox"))
    await asyncio.sleep(1)  # the stop is under way: these wait in the inbox
    texts = {f"r{i}": f"during restart {i}" for i in range(5)}
    seqs = await send_until_stored(alice, texts)
    await restart
    stack.wait_healthy("chat-http")
    texts2 = {"after": "after restart"}
    seqs.update(await send_until_stored(alice, texts2))
    for _ in range(6):
        await bob.next_of("chat_message", timeout=30)
    got = {f["client_id"] for f in bob.frames if f["type"] == "chat_message"}
    assert got == set(texts) | set(texts2)
    assert len(chat_seqs(bob)) == len(set(chat_seqs(bob))) == 6, "each message exactly once"
    assert alice.ws.close_code is None and bob.ws.close_code is None, "a socket was dropped"
    for c in (alice, bob):
        await c.close()


@pytest.mark.timeout(240)
async def test_killing_a_gateway_replica_its_clients_reconnect_with_since_and_miss_nothing(stack, tokens):
    room = new_room(stack, tokens)
    clients = []
    for _ in range(2 * WS_GATEWAY_REPLICAS):  # round robin: some on every replica
        c = await Client.connect(room_url(stack, room), tokens["bob"])
        await c.next_of("history", timeout=15)
        clients.append(c)
    writer = await Client.connect(room_url(stack, room), tokens["alice"])
    await writer.next_of("history", timeout=15)
    await send_until_stored(writer, {"before": "before the kill"})
    for c in clients:
        await c.next_of("chat_message", timeout=15)
    victim = stack.containers("ws-gateway")[0]
    # A crash, not `docker kill`: the engine treats a kill as an operator's stop and
    # does not apply the restart policy; a process dying on its own is restarted.
    stack.crash(victim)
    try:
        await asyncio.sleep(1)
        dropped = [c for c in clients if c.ws.close_code is not None or await _is_dead(c)]
        assert dropped, "no socket was on the crashed replica"
        # The writer may itself have been on the victim: reconnect it too if so.
        if writer.ws.close_code is not None or await _is_dead(writer):
            writer = await _reconnect(stack, room, tokens["alice"], chat_seqs(writer)[-1])
        texts = {f"k{i}": f"while away {i}" for i in range(3)}
        await send_until_stored(writer, texts)
        for c in dropped:
            since = chat_seqs(c)[-1]
            fresh = await _reconnect(stack, room, tokens["bob"], since)
            missed = (await fresh.next_of("history", timeout=15))["messages"]
            assert [m["message"] for m in missed] == list(texts.values())
            assert [m["seq"] for m in missed] == [since + 1, since + 2, since + 3]
            await fresh.close()
    finally:
        # The restart policy brings the crashed replica back, healthy.
        stack.wait_healthy("ws-gateway")


async def _is_dead(c: Client) -> bool:
    try:
        await asyncio.wait_for(c.ws.ping(), 3)
        return False
    except (websockets.ConnectionClosed, TimeoutError):
        return True


async def _reconnect(stack, room: str, tok: str, since: int) -> Client:
    """Retry as a client does: the gateway moves on to the live replica."""
    for _ in range(30):
        try:
            return await Client.connect(room_url(stack, room, since=since), tok)
        except (OSError, websockets.InvalidStatus, TimeoutError):
            await asyncio.sleep(1)
    raise AssertionError("could not reconnect")


@pytest.mark.skipif("collab" not in NAMES, reason="no collab service in SERVICES")
async def test_collab_two_editors_converge(stack, tokens):
    from collabclients import YClient
    from collabhelpers import converged, new_document, ws_url

    doc_id = new_document(stack, tokens, "hello\n", {"bob": "edit"})
    a = await YClient(ws_url(stack, doc_id), tokens["alice"], "a").connect()
    b = await YClient(ws_url(stack, doc_id), tokens["bob"], "b").connect()
    for y in (a, b):
        await y.wait_synced()
    a.insert(0, "A")
    b.insert(len(b.value), "B")
    text = await converged(stack, tokens, doc_id, lambda: [a.value, b.value], timeout=30)
    assert text.startswith("A") and text.endswith("B")


@pytest.mark.skipif("dashboard" not in NAMES, reason="no dashboard service in SERVICES")
async def test_dashboard_streams_stats_to_staff_and_refuses_others(stack, tokens):
    viewer = await Client.connect(f"{stack.ws_url}/ws/dashboard/", tokens["admin"])
    await viewer.next_of("initial_stats", timeout=20)
    await viewer.next_of("stats_update", timeout=30)
    await viewer.close()
    outsider = await Client.connect(f"{stack.ws_url}/ws/dashboard/", tokens["alice"])
    assert await outsider.closed_with(15) == 4403
