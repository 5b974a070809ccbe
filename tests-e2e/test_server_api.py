"""The server API end to end, through nginx: the shop's back end, with an API key made
by staff, reaches the right user's sockets and no one else's; a retry with the same
Idempotency-Key stores one notification; a revoked key is refused at once."""

from __future__ import annotations

import uuid

import httpx
import pytest
from wsclient import Client


def auth(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


def make_key(fleet, tokens, *scopes: str) -> str:
    res = httpx.post(
        f"{fleet.url}/api/auth/api-keys/",
        json={"name": f"e2e {uuid.uuid4().hex[:6]}", "scopes": list(scopes)},
        headers=auth(tokens["admin"]),
        timeout=30,
    )
    assert res.status_code == 201, res.text
    return res.json()["key"]


@pytest.fixture(scope="module")
def key(fleet, tokens) -> str:
    return make_key(fleet, tokens, "notify", "dashboard", "chat", "tasks")


def me(fleet, tok: str) -> dict:
    return httpx.get(f"{fleet.url}/api/auth/me/", headers=auth(tok), timeout=30).json()


async def post(fleet, key: str, path: str, body: dict, **headers) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(fleet.url + path, json=body, headers={**auth(key), **headers})


async def tab(fleet, tok: str, route: str, first: str | None) -> Client:
    client = await Client.connect(f"{fleet.ws_url}{route}", tok)
    if first:
        await client.next_of(first, timeout=15)
    return client


# ------------------------------------------------------------------ notify ----
async def test_a_shop_user_named_by_sub_is_notified_in_every_tab_and_nobody_else(fleet, tokens, shop, key):
    sub = f"shop-{uuid.uuid4().hex[:8]}"
    shop_tok = shop.hs256(sub=sub, name=f"buyer {sub}")
    tabs = [await tab(fleet, shop_tok, "/ws/notifications/", "unread_count") for _ in range(2)]
    other = await tab(fleet, tokens["bob"], "/ws/notifications/", "unread_count")
    title = "Order shipped " + uuid.uuid4().hex[:6]
    res = await post(fleet, key, "/api/notifications/send/", {"sub": sub, "title": title, "url": "/orders/1/"})
    assert res.status_code == 201, res.text
    body = res.json()
    assert body["user_id"] == me(fleet, shop_tok)["id"]
    for t in tabs:
        frame = await t.next_of("notification", timeout=10, title=title)
        assert frame["id"] == body["id"] and frame["url"] == "/orders/1/"
        assert (await t.next_of("unread_count", timeout=10))["count"] == 1
    assert not [f for f in await other.drain(0.5) if f.get("title") == title]
    for c in (*tabs, other):
        await c.close()


async def test_the_same_idempotency_key_twice_stores_one_notification(fleet, tokens, key):
    alice = me(fleet, tokens["alice"])
    title = "Once " + uuid.uuid4().hex[:6]
    idem = uuid.uuid4().hex
    body = {"user_id": alice["id"], "title": title, "message": "m"}
    first = await post(fleet, key, "/api/notifications/send/", body, **{"Idempotency-Key": idem})
    again = await post(fleet, key, "/api/notifications/send/", body, **{"Idempotency-Key": idem})
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert first.json() == again.json()
    listed = httpx.get(f"{fleet.url}/api/notifications/?limit=100", headers=auth(tokens["alice"]), timeout=30).json()
    assert [n["id"] for n in listed["notifications"] if n["title"] == title] == [first.json()["id"]]


async def test_a_revoked_key_is_refused_at_once_by_every_service(fleet, tokens):
    key = make_key(fleet, tokens, "notify", "dashboard", "chat", "tasks")
    alice = me(fleet, tokens["alice"])
    ok = await post(fleet, key, "/api/notifications/send/", {"user_id": alice["id"], "title": "before revoke"})
    assert ok.status_code == 201, ok.text
    key_id = key.split("_")[1]
    res = httpx.post(f"{fleet.url}/api/auth/api-keys/{key_id}/revoke/", headers=auth(tokens["admin"]), timeout=30)
    assert res.status_code == 200 and res.json()["revoked"]
    refused = await post(fleet, key, "/api/notifications/send/", {"user_id": alice["id"], "title": "after revoke"})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_api_key"


async def test_a_key_without_the_scope_or_a_staff_token_is_refused(fleet, tokens):
    chat_only = make_key(fleet, tokens, "chat")
    alice = me(fleet, tokens["alice"])
    assert (
        await post(fleet, chat_only, "/api/notifications/send/", {"user_id": alice["id"], "title": "t"})
    ).status_code == 403
    assert (
        await post(fleet, tokens["admin"], "/api/notifications/send/", {"user_id": alice["id"], "title": "t"})
    ).status_code == 401


# --------------------------------------------------------------- dashboard ----
async def test_the_shops_order_and_an_alert_reach_the_staff_dashboard(fleet, tokens, key):
    staff = await tab(fleet, tokens["admin"], "/ws/dashboard/", "initial_stats")
    shop_id = f"SHOP-{uuid.uuid4().hex[:8]}"
    order = {
        "id": shop_id,
        "user": "carol",
        "total": "9.90",
        "items": [{"name": "tea", "quantity": 1, "price": "9.90"}],
    }
    res = await post(fleet, key, "/api/dashboard/events/", {"type": "new_order", "order": order})
    assert res.status_code == 201, res.text
    frame = await staff.next_of("new_order", timeout=10)
    assert frame["order"]["id"] == shop_id and frame["order"]["total"] == "9.90" and frame["order"]["user"] == "carol"
    # Not a Switchboard order unless asked: the orders list does not have it.
    listed = httpx.get(f"{fleet.url}/api/orders/?limit=200", headers=auth(tokens["admin"]), timeout=30).json()
    assert shop_id not in str(listed)
    text = "payments slow " + uuid.uuid4().hex[:6]
    res = await post(fleet, key, "/api/dashboard/events/", {"type": "alert", "level": "warning", "message": text})
    assert res.status_code == 201, res.text
    alert = await staff.next_of("alert", timeout=10, message=text)
    assert alert["level"] == "warning" and alert["source"] == "shop"
    await staff.close()
    # A user who is not staff has no dashboard socket to receive either on.
    assert await (await Client.connect(f"{fleet.ws_url}/ws/dashboard/", tokens["alice"])).closed_with() == 4403


# ------------------------------------------------------------------- tasks ----
async def test_a_shop_tasks_progress_reaches_its_user_only_and_a_late_client_reads_it(fleet, tokens, key):
    alice = me(fleet, tokens["alice"])
    mine = await tab(fleet, tokens["alice"], "/ws/tasks/", None)
    other = await tab(fleet, tokens["bob"], "/ws/tasks/", None)
    task_id = f"shop-export-{uuid.uuid4().hex[:8]}"
    for status, progress in (("started", 0), ("progress", 50)):
        body = {
            "user_id": alice["id"],
            "task_id": task_id,
            "status": status,
            "progress": progress,
            "message": f"{progress}%",
        }
        res = await post(fleet, key, "/api/reports/task-updates/", body)
        assert res.status_code == 200, res.text
        frame = await mine.next_of("task_update", timeout=10, task_id=task_id, status=status)
        assert frame["progress"] == progress and frame["message"] == f"{progress}%" and frame["timestamp"]
        assert set(frame) == {"type", "task_id", "status", "progress", "message", "result", "timestamp"}
    assert not [f for f in await other.drain(0.5) if f.get("task_id") == task_id]
    late = httpx.get(f"{fleet.url}/api/reports/{task_id}/", headers=auth(tokens["alice"]), timeout=30).json()
    assert (late["status"], late["progress"], late["message"]) == ("progress", 50, "50%")
    assert httpx.get(f"{fleet.url}/api/reports/{task_id}/", headers=auth(tokens["bob"]), timeout=30).status_code == 404
    for c in (mine, other):
        await c.close()


# -------------------------------------------------------------------- chat ----
async def test_a_system_message_is_stored_with_the_rooms_seq_once_and_reaches_that_room_only(fleet, tokens, key):
    rooms = []
    for who in ("alice", "bob"):
        res = httpx.post(
            f"{fleet.url}/api/chat/rooms/",
            json={"name": f"server api {who} {uuid.uuid4().hex[:6]}"},
            headers=auth(tokens[who]),
            timeout=30,
        )
        assert res.status_code == 201, res.text
        rooms.append(res.json()["slug"])
    here = await tab(fleet, tokens["alice"], f"/ws/chat/{rooms[0]}/", "history")
    elsewhere = await tab(fleet, tokens["bob"], f"/ws/chat/{rooms[1]}/", "history")
    await here.send({"type": "chat_message", "message": "before the shop", "client_id": uuid.uuid4().hex})
    mine = await here.next_of("chat_message", timeout=10, message="before the shop")
    text = "Shop closes at six " + uuid.uuid4().hex[:6]
    idem = uuid.uuid4().hex
    path = f"/api/chat/rooms/{rooms[0]}/system-messages/"
    first = await post(fleet, key, path, {"message": text, "user": "Shop"}, **{"Idempotency-Key": idem})
    again = await post(fleet, key, path, {"message": text, "user": "Shop"}, **{"Idempotency-Key": idem})
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert first.json()["seq"] == again.json()["seq"] == mine["seq"] + 1
    frame = await here.next_of("chat_message", timeout=10, message=text)
    assert frame["seq"] == mine["seq"] + 1 and frame["system"] is True and frame["user"] == "Shop"
    stored = httpx.get(f"{fleet.url}/api/chat/rooms/{rooms[0]}/messages/", headers=auth(tokens["bob"]), timeout=30)
    assert [m["seq"] for m in stored.json()["messages"] if m["message"] == text] == [frame["seq"]]
    assert not [f for f in await elsewhere.drain(0.5) if f.get("message") == text]
    for c in (here, elsewhere):
        await c.close()
