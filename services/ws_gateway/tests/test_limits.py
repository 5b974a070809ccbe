"""Socket caps and the login throttle, against a real Redis: what a user notices is a
4429 close past the cap (on any gateway process) and a 429 with Retry-After past the
failed-login budget; a dead gateway's sockets stop counting."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import WebsocketCommunicator

from ws_gateway import clientip, connections
from ws_gateway.consumer import GatewayConsumer

pytestmark = pytest.mark.usefixtures("channel_layers")


def socket(token, client=("10.1.2.3", 5000), headers=()):
    comm = WebsocketCommunicator(
        GatewayConsumer.as_asgi(),
        "/ws/notifications/",
        headers=[(b"authorization", f"Bearer {token}".encode()), *headers],
    )
    comm.scope["client"] = list(client)
    return comm


async def opened(comm) -> bool:
    assert (await comm.connect())[0]
    if await comm.receive_nothing(0.5):
        return True  # waiting for the service: admitted
    out = await comm.receive_output(1)
    assert out["type"] == "websocket.close", out
    return out["code"]


async def test_the_socket_past_the_user_cap_closes_4429_and_a_close_frees_a_slot(token_for, monkeypatch):
    monkeypatch.setenv("WS_MAX_SOCKETS_PER_USER", "3")
    token = token_for()
    comms = [socket(token) for _ in range(4)]
    results = [await opened(c) for c in comms]
    assert results == [True, True, True, 4429]
    await comms[0].disconnect()
    await asyncio.sleep(0.1)
    again = socket(token)
    assert await opened(again) is True
    for c in (*comms[1:3], again):
        await c.disconnect()


async def test_the_ip_cap_counts_every_user_of_one_address(token_for, monkeypatch):
    monkeypatch.setenv("WS_MAX_SOCKETS_PER_IP", "2")
    comms = [socket(token_for(f"u{i}", user_id=100 + i), client=("10.9.9.9", 1)) for i in range(3)]
    assert [await opened(c) for c in comms] == [True, True, 4429]
    other = socket(token_for("u9", user_id=109), client=("10.9.9.8", 1))
    assert await opened(other) is True
    for c in (*comms[:2], other):
        await c.disconnect()


async def test_a_dead_gateways_sockets_expire_from_the_count(token_for, monkeypatch):
    """A gateway killed with sockets open never releases them: their slots must come
    back by themselves (the heartbeat that would have refreshed them stopped)."""
    monkeypatch.setenv("WS_MAX_SOCKETS_PER_USER", "1")
    monkeypatch.setenv("PRESENCE_TTL_SECONDS", "1")
    dead = socket(token_for())
    assert await opened(dead) is True
    # The "dead" gateway: its registry (and heartbeat) is gone without a release.
    connections.registry.open.clear()
    monkeypatch.setattr(connections, "registry", connections.Registry())
    assert await opened(socket(token_for())) == 4429
    await asyncio.sleep(1.2)
    assert await opened(socket(token_for())) is True


def test_x_real_ip_is_believed_from_a_trusted_proxy_only(monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXIES", "127.0.0.1/32,10.0.0.0/8")
    assert clientip.resolve("127.0.0.1", "203.0.113.9") == "203.0.113.9"
    assert clientip.resolve("10.4.0.1", "203.0.113.9") == "203.0.113.9"
    assert clientip.resolve("198.51.100.7", "203.0.113.9") == "198.51.100.7"  # a client's own claim
    assert clientip.resolve("127.0.0.1", "not an ip") == "127.0.0.1"
    assert clientip.resolve("127.0.0.1", None) == "127.0.0.1"


def test_wrong_passwords_for_one_username_are_throttled_with_retry_after(client, django_user_model, monkeypatch):
    monkeypatch.setenv("LOGIN_FAILURES_PER_USERNAME", "3")
    django_user_model.objects.create_user("carol", password="right")

    def attempt(password, ip="10.0.0.5"):
        return client.post(
            "/api/auth/token/",
            {"username": "carol", "password": password},
            content_type="application/json",
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_REAL_IP=ip,
        )

    assert [attempt("wrong").status_code for _ in range(3)] == [401, 401, 401]
    res = attempt("right")  # even the right password waits: guessing costs the window
    assert res.status_code == 429 and int(res["Retry-After"]) >= 1
    assert attempt("right", ip="10.0.0.6").status_code == 429  # per username, from anywhere


def test_wrong_passwords_from_one_ip_are_throttled_on_the_login_page_too(client, django_user_model, monkeypatch):
    monkeypatch.setenv("LOGIN_FAILURES_PER_IP", "4")
    django_user_model.objects.create_user("dave", password="right")
    for i in range(4):
        res = client.post("/login/", {"username": f"guess{i}", "password": "x"}, REMOTE_ADDR="10.7.7.7")
        assert res.status_code == 200
    res = client.post("/login/", {"username": "dave", "password": "right"}, REMOTE_ADDR="10.7.7.7")
    assert res.status_code == 429 and int(res["Retry-After"]) >= 1
    res = client.post("/login/", {"username": "dave", "password": "right"}, REMOTE_ADDR="10.7.7.8")
    assert res.status_code == 302


async def test_a_socket_closes_4001_once_its_token_expired_plus_the_grace(monkeypatch):
    from switchboard import tokens

    monkeypatch.setenv("TOKEN_EXPIRY_GRACE_SECONDS", "0.5")
    # A 3 s token: the handshake must finish while it is valid, which on a loaded CI
    # machine took over the 1 s this test first gave it (it closed 4001 at the accept).
    comm = socket(tokens.issue(tokens.Identity(7, "eve"), ttl=3))
    assert await opened(comm) is True
    out = await comm.receive_output(10)
    assert out["type"] == "websocket.close" and out["code"] == 4001
