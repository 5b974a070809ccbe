"""Tokens minted by the shop's own back end, end to end through nginx: a shop user never
provisioned in Switchboard opens /ws/notifications/ and a chat room (header, `?token=`,
subprotocol) with an HS256 token and with an RS256 token of a key pair the test made and
published in the fleet's JWKS file, becomes a local user every service knows (REST of
chat and notification too), and gets their own frames only. A token of a removed kid or
signed with Django's SECRET_KEY is refused."""

from __future__ import annotations

import uuid

import httpx
import pytest
import websockets
from wsclient import Client

from switchboard.shoptesting import ShopKey, mint_hs256


def auth(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def notify(fleet, tokens, username: str, title: str) -> dict:
    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.post(
            f"{fleet.url}/api/notifications/",
            json={"user": username, "title": title, "message": "from the shop", "url": "/orders/1/"},
            headers=auth(tokens["admin"]),
        )
    assert res.status_code == 201, res.text
    return res.json()


async def me(fleet, tok: str) -> dict:
    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.get(f"{fleet.url}/api/auth/me/", headers=auth(tok))
    assert res.status_code == 200, res.text
    return res.json()


@pytest.mark.parametrize("alg", ["HS256", "RS256"])
async def test_a_shop_user_gets_their_own_notifications_with_a_shop_token(fleet, tokens, shop, alg):
    name = unique(f"shop {alg}")
    if alg == "HS256":
        tok = shop.hs256(unique("cust"), name)
    else:
        key = ShopKey.rsa(unique("rsa"))
        shop.publish(key)
        tok = key.mint(sub=unique("cust"), name=name, ttl=600)
    tab = await Client.connect(f"{fleet.ws_url}/ws/notifications/", tok)
    assert (await tab.next_of("unread_count", timeout=15))["count"] == 0
    bob = await Client.connect(f"{fleet.ws_url}/ws/notifications/", tokens["bob"])
    await bob.next_of("unread_count", timeout=15)

    # Known to every service from the first connect: staff notify them by their name.
    title = unique("order shipped")
    created = await notify(fleet, tokens, name, title)
    got = await tab.next_of("notification", timeout=10, title=title)
    assert got["id"] == created["id"] and got["url"] == "/orders/1/"
    assert (await tab.next_of("unread_count", timeout=10))["count"] == 1
    assert not [f for f in await bob.drain(0.5) if f["type"] == "notification"]

    # The notification service's REST API takes the same token, as the same local user.
    async with httpx.AsyncClient(timeout=30) as http:
        mine = (await http.get(f"{fleet.url}/api/notifications/", headers=auth(tok))).json()
    assert [n["id"] for n in mine["notifications"]] == [created["id"]] and mine["unread_count"] == 1
    for c in (tab, bob):
        await c.close()


async def test_shop_users_chat_in_a_room_on_every_carrier(fleet, tokens, shop):
    """HS256 in the header (and chat's REST), RS256 in `?token=`, HS256 in the subprotocol."""
    key = ShopKey.rsa(unique("rsa"))
    shop.publish(key)
    ann, ben = unique("Ann"), unique("Ben")
    ann_tok = shop.hs256(unique("cust"), ann)
    ben_tok = key.mint(sub=unique("cust"), name=ben, ttl=600)
    room = "r" + uuid.uuid4().hex[:10]
    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.post(f"{fleet.url}/api/chat/rooms/", json={"name": room}, headers=auth(ann_tok))
    assert res.status_code == 201, res.text

    url = f"{fleet.ws_url}/ws/chat/{room}/"
    ann_ws = await Client.connect(url, ann_tok)
    await ann_ws.next_of("history")
    ben_ws = await Client.connect(f"{url}?token={ben_tok}")
    await ben_ws.next_of("history")
    ann_tab2 = Client(await websockets.connect(url, subprotocols=["bearer", ann_tok], open_timeout=10))
    await ann_tab2.next_of("history")
    assert sorted((await ann_tab2.next_of("online_users"))["users"]) == sorted([ann, ben])
    outsider = await Client.connect(f"{fleet.ws_url}/ws/chat/lobby/", tokens["bob"])
    await outsider.next_of("history")

    await ben_ws.send({"type": "chat_message", "message": "hi from the shop", "client_id": "b1"})
    for client in (ann_ws, ben_ws, ann_tab2):
        got = await client.next_of("chat_message", timeout=10)
        assert (got["user"], got["message"], got["client_id"]) == (ben, "hi from the shop", "b1")
    assert not [f for f in await outsider.drain(0.5) if f.get("message") == "hi from the shop"]
    assert (await me(fleet, ben_tok))["username"] == ben
    for c in (ann_ws, ben_ws, ann_tab2, outsider):
        await c.close()


async def test_the_username_follows_the_latest_shop_token(fleet, shop):
    sub = unique("cust")
    first = await me(fleet, shop.hs256(sub, unique("Old Name")))
    renamed = unique("New Name")
    tab = await Client.connect(f"{fleet.ws_url}/ws/notifications/", shop.hs256(sub, renamed))
    await tab.next_of("unread_count", timeout=15)
    assert await me(fleet, shop.hs256(sub, renamed)) == {**first, "username": renamed}
    await tab.close()


async def test_refused_shop_tokens_close_4401(fleet, shop):
    from switchboard.config import env

    refused = [
        mint_hs256("rotated-out", shop.secret, sub=unique("cust"), name="x"),
        mint_hs256(shop.kid, env("SWITCHBOARD_SECRET_KEY"), sub=unique("cust"), name="x"),
        shop.hs256(unique("cust"), "late", ttl=-1),
    ]
    for tok in refused:
        ws = await Client.connect(f"{fleet.ws_url}/ws/notifications/", tok)
        assert await ws.closed_with() == 4401
        async with httpx.AsyncClient(timeout=30) as http:
            assert (await http.get(f"{fleet.url}/api/notifications/", headers=auth(tok))).status_code == 401
