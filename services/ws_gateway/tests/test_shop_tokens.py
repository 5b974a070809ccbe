"""A token the shop's back end minted opens every carrier a Switchboard token does, as
the shop user's local user, made on first sight (ShopUser): the REST API's header, and
a socket's header, `?token=` and `["bearer", token]` subprotocol."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model

from switchboard import tokens
from switchboard.config import env
from switchboard.routes import shard_channel
from switchboard.shoptesting import ShopKey, claims, forge_hs256, mint_hs256, write_jwks
from ws_gateway.consumer import GatewayConsumer
from ws_gateway.models import ShopUser

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layers")]

SECRET = "shop-hs256-secret-0123456789abcdefghijklmnop"


@pytest.fixture(autouse=True)
def shop_keys(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOP_JWT_KEYS", f"shop-k1:{SECRET}")
    path = tmp_path / "jwks.json"
    key = ShopKey.rsa("shop-rsa")
    write_jwks(path, key, ShopKey.ec("shop-ec"))
    monkeypatch.setenv("SHOP_JWKS", str(path))
    return key


def me(client, token):
    return client.get("/api/auth/me/", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_a_shop_user_first_seen_in_a_token_becomes_a_local_user(client):
    res = me(client, mint_hs256("shop-k1", SECRET, sub="cust-7", name="Carla", staff=False))
    assert res.status_code == 200, res.content
    row = ShopUser.objects.select_related("user").get(sub="cust-7")
    assert res.json() == {"id": row.user.pk, "username": "Carla", "is_staff": False}
    assert not row.user.has_usable_password()


def test_the_username_and_staff_follow_the_latest_token(client):
    first = me(client, mint_hs256("shop-k1", SECRET, sub="cust-8", name="Dan")).json()
    later = me(client, mint_hs256("shop-k1", SECRET, sub="cust-8", name="Daniel", staff=True)).json()
    assert later == {"id": first["id"], "username": "Daniel", "is_staff": True}
    assert get_user_model().objects.get(pk=first["id"]).username == "Daniel"
    # A token without a name keeps the stored one; staff absent is not staff.
    assert me(client, mint_hs256("shop-k1", SECRET, sub="cust-8", name=None)).json()["username"] == "Daniel"
    assert not me(client, mint_hs256("shop-k1", SECRET, sub="cust-8", name=None)).json()["is_staff"]


def test_a_shop_name_of_a_local_user_is_told_apart(client):
    get_user_model().objects.create_user("admin", password="pw", is_staff=True)
    got = me(client, mint_hs256("shop-k1", SECRET, sub="cust-9", name="admin")).json()
    assert got["username"] == "admin#cust-9" and not got["is_staff"]


def test_refused_shop_tokens_make_no_user(client, monkeypatch):
    bad = [
        mint_hs256("shop-k0", SECRET),  # rotated-out kid
        mint_hs256("shop-k1", env("SWITCHBOARD_SECRET_KEY")),  # Django's SECRET_KEY
        mint_hs256("shop-k1", SECRET, ttl=-1),  # expired
        mint_hs256("shop-k1", SECRET, aud="someone-else"),  # an audience while none is configured
    ]
    for token in bad:
        assert me(client, token).status_code == 401
    monkeypatch.setenv("SHOP_JWT_ISSUER", "https://shop.example")
    assert me(client, mint_hs256("shop-k1", SECRET, iss="https://evil.example")).status_code == 401
    assert not ShopUser.objects.exists()


def test_staff_shop_token_passes_the_staff_check(client):
    assert (
        client.get(
            "/api/auth/check-staff/", HTTP_AUTHORIZATION=f"Bearer {mint_hs256('shop-k1', SECRET, staff=True)}"
        ).status_code
        == 200
    )
    assert (
        client.get(
            "/api/auth/check-staff/", HTTP_AUTHORIZATION=f"Bearer {mint_hs256('shop-k1', SECRET, sub='x2')}"
        ).status_code
        == 403
    )


# ---- sockets: every carrier ----


def communicator(token, carrier):
    headers, query, subprotocols = [], "", None
    if carrier == "header":
        headers.append((b"authorization", f"Bearer {token}".encode()))
    elif carrier == "query":
        query = f"?token={token}"
    else:
        subprotocols = ["bearer", token]
    return WebsocketCommunicator(
        GatewayConsumer.as_asgi(), "/ws/chat/lobby/" + query, headers=headers, subprotocols=subprotocols
    )


async def connect_command(comm):
    assert (await comm.connect())[0]
    return await asyncio.wait_for(get_channel_layer("inbox").receive(shard_channel("chat", "lobby")), 5)


@pytest.mark.parametrize("carrier", ["header", "query", "subprotocol"])
async def test_a_shop_token_opens_a_socket_as_the_local_user_on_every_carrier(carrier):
    comm = communicator(mint_hs256("shop-k1", SECRET, sub=f"sock-{carrier}", name=f"Sam {carrier}"), carrier)
    cmd = await connect_command(comm)
    row = await ShopUser.objects.select_related("user").aget(sub=f"sock-{carrier}")
    assert cmd["type"] == "gw.connect"
    assert cmd["user"] == {"id": row.user.pk, "username": f"Sam {carrier}", "is_staff": False}
    await comm.disconnect()


@pytest.mark.parametrize("kind", ["rsa", "ec"])
async def test_rs256_and_es256_shop_tokens_open_a_socket(shop_keys, tmp_path, kind, monkeypatch):
    key = shop_keys if kind == "rsa" else ShopKey.ec("shop-ec-2")
    if kind == "ec":
        path = tmp_path / "jwks.json"
        write_jwks(path, shop_keys, key)
    cmd = await connect_command(communicator(key.mint(sub=f"{kind}-1", name=f"{kind} user"), "header"))
    assert cmd["user"]["username"] == f"{kind} user"


async def test_a_refused_shop_token_closes_4401(shop_keys):
    # The algorithm confusion (HS256 keyed with the JWKS public key), Django's key, a removed kid.
    confused = forge_hs256({"alg": "HS256", "kid": shop_keys.kid}, claims(staff=True), shop_keys.public_pem)
    for token in (confused, mint_hs256("shop-k1", env("SWITCHBOARD_SECRET_KEY")), mint_hs256("old", SECRET)):
        comm = communicator(token, "header")
        assert (await comm.connect())[0]
        out = await comm.receive_output(5)
        assert (out["type"], out["code"]) == ("websocket.close", 4401)
    assert not await ShopUser.objects.aexists()


async def test_switchboard_tokens_still_open_sockets_without_the_shop_path(token_for):
    cmd = await connect_command(communicator(token_for("alice", 1), "header"))
    assert cmd["user"] == tokens.Identity(1, "alice").as_dict()
