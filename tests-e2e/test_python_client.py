"""The Python client (clients/python) against the real fleet, through nginx: a token
mint_token makes with the fleet's shop key opens the user's sockets; the server API's
notify (sync, async, and the Django helper send_user_notification run as a shop's own
process) reaches that user's tab, stored once per Idempotency-Key; the client's errors
are what Switchboard answers."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import uuid
from decimal import Decimal

import httpx
import pytest
from wsclient import Client as WsClient

import switchboard_client as sb


@pytest.fixture(scope="module")
def api_key(fleet, tokens) -> str:
    """A key of the shop's back end, made by staff through the REST API."""
    res = httpx.post(
        f"{fleet.url}/api/auth/api-keys/",
        json={"name": f"python client e2e {uuid.uuid4().hex[:6]}", "scopes": ["notify"]},
        headers={"Authorization": f"Bearer {tokens['admin']}"},
        timeout=30,
    )
    assert res.status_code == 201, res.text
    return res.json()["key"]


async def shop_user_tab(fleet, shop, sub: str, name: str) -> WsClient:
    tab = await WsClient.connect(f"{fleet.ws_url}/ws/notifications/", sb.mint_token(sub, name, key=shop_key(shop)))
    await tab.next_of("unread_count", timeout=15)
    return tab


def unread(fleet, shop, sub: str, name: str) -> dict:
    token = sb.mint_token(sub, name, key=shop_key(shop))
    return httpx.get(f"{fleet.url}/api/notifications/", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()


def shop_key(shop) -> str:
    return f"{shop.kid}:{shop.secret}"


async def test_a_minted_token_opens_the_users_notifications_and_chat(fleet, shop):
    name = f"py client {uuid.uuid4().hex[:8]}"
    token = sb.mint_token(f"py-{uuid.uuid4().hex[:8]}", name, key=shop_key(shop))
    bell = await WsClient.connect(f"{fleet.ws_url}/ws/notifications/", token)
    assert (await bell.next_of("unread_count", timeout=15))["count"] == 0
    room = await WsClient.connect(f"{fleet.ws_url}/ws/chat/lobby/?token={token}")
    await room.next_of("history", timeout=15)
    await room.send({"type": "chat_message", "message": "from python", "client_id": "py-1"})
    assert (await room.next_of("chat_message", timeout=10, client_id="py-1"))["user"] == name
    for ws in (bell, room):
        await ws.close()


def test_the_clients_errors_are_switchboards_answers(fleet, shop):
    token = sb.mint_token(f"py-{uuid.uuid4().hex[:8]}", "py errors", key=shop_key(shop))
    with sb.Client(fleet.url, api_key=token, retries=0) as c:
        assert c.request("GET", "/api/auth/me/")["username"] == "py errors"
        with pytest.raises(sb.BadRequest) as bad:
            c.request("POST", "/api/chat/rooms/", json={"name": ""})
        assert bad.value.status == 400 and bad.value.code
        with pytest.raises(sb.NotFound):
            c.request("GET", "/api/chat/rooms/no-such-room-here/messages/")
    forged = sb.mint_token("x", "x", key=f"{shop.kid}:wrong-secret-0123456789abcdef")
    with sb.Client(fleet.url, api_key=forged) as c, pytest.raises(sb.Unauthorized) as info:
        c.request("GET", "/api/notifications/")
    assert info.value.code == "unauthorized" and info.value.attempts == 1


async def test_notify_reaches_the_shop_users_tab_and_a_retry_is_stored_once(fleet, shop, api_key):
    sub, name = f"py-{uuid.uuid4().hex[:8]}", f"py notify {uuid.uuid4().hex[:6]}"
    tab = await shop_user_tab(fleet, shop, sub, name)
    with sb.Client(fleet.url, api_key) as c:
        first = c.notify("Order shipped", "on its way", "/orders/7/", sub=sub, idempotency_key=f"ship-{sub}")
        again = c.notify("Order shipped", "on its way", "/orders/7/", sub=sub, idempotency_key=f"ship-{sub}")
    assert again["id"] == first["id"]
    got = await tab.next_of("notification", timeout=10, title="Order shipped")
    assert got["id"] == first["id"] and got["url"] == "/orders/7/"
    async with sb.AsyncClient(fleet.url, api_key) as ac:
        other = await ac.notify("Second", sub=sub)
    await tab.next_of("notification", timeout=10, id=other["id"])
    mine = unread(fleet, shop, sub, name)
    assert sorted(n["id"] for n in mine["notifications"]) == sorted([first["id"], other["id"]])
    assert mine["unread_count"] == 2
    await tab.close()


def test_a_key_without_the_scope_or_revoked_is_refused_with_clear_errors(fleet, tokens):
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    made = httpx.post(
        f"{fleet.url}/api/auth/api-keys/", json={"name": "py no scope", "scopes": ["chat"]}, headers=admin, timeout=30
    ).json()
    with sb.Client(fleet.url, made["key"], retries=0) as c:
        with pytest.raises(sb.Forbidden):
            c.notify("x", sub="py-nobody")
        revoked = httpx.post(f"{fleet.url}/api/auth/api-keys/{made['id']}/revoke/", headers=admin, timeout=30)
        assert revoked.status_code == 200
        with pytest.raises(sb.Unauthorized):
            c.notify("x", sub="py-nobody")


SHOP_PROCESS = """
import django
from django.conf import settings

settings.configure(
    SECRET_KEY="the-shops-own-django-secret-key-0123456789",
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    SWITCHBOARD_URL=os.environ["SHOP_SWITCHBOARD_URL"],
    SWITCHBOARD_API_KEY=os.environ["SHOP_SWITCHBOARD_API_KEY"],
)
django.setup()
from django.contrib.auth.models import User
from django.core.management import call_command

from switchboard_client.django import send_user_notification

call_command("migrate", verbosity=0)
user = User.objects.create(pk=int(os.environ["SHOP_USER_PK"]), username=os.environ["SHOP_USER_NAME"])
print(send_user_notification(user.pk, "From the shop", "create_order said so", url="/orders/1/")["id"])
"""


async def test_send_user_notification_from_a_shops_django_process(fleet, shop, api_key):
    pk, name = random.randint(10**6, 10**9), f"dj user {uuid.uuid4().hex[:6]}"
    tab = await shop_user_tab(fleet, shop, str(pk), name)
    env = {
        **os.environ,
        "SHOP_SWITCHBOARD_URL": fleet.url,
        "SHOP_SWITCHBOARD_API_KEY": api_key,
        "SHOP_USER_PK": str(pk),
        "SHOP_USER_NAME": name,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    script = "import os\n" + textwrap.dedent(SHOP_PROCESS)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    got = await tab.next_of("notification", timeout=10, title="From the shop")
    assert got["id"] == int(done.stdout.strip()) and got["message"] == "create_order said so"
    await tab.close()


@pytest.fixture(scope="module")
def events_key(fleet, tokens) -> str:
    res = httpx.post(
        f"{fleet.url}/api/auth/api-keys/",
        json={"name": f"python client events {uuid.uuid4().hex[:6]}", "scopes": ["dashboard", "tasks", "chat"]},
        headers={"Authorization": f"Bearer {tokens['admin']}"},
        timeout=30,
    )
    assert res.status_code == 201, res.text
    return res.json()["key"]


async def test_a_shop_order_and_an_alert_reach_the_staff_dashboard(fleet, tokens, events_key):
    staff = await WsClient.connect(f"{fleet.ws_url}/ws/dashboard/", tokens["admin"])
    order_id = f"SHOP-{uuid.uuid4().hex[:8]}"
    with sb.Client(fleet.url, events_key) as c:
        c.dashboard_order(
            {
                "id": order_id,
                "user": "ann",
                "total": Decimal("12.50"),
                "items": [{"name": "mug", "quantity": 2, "price": "6.25"}],
            }
        )
        got = (await staff.next_of("new_order", timeout=15))["order"]
        while got["id"] != order_id:
            got = (await staff.next_of("new_order", timeout=15))["order"]
        assert (got["user"], got["total"]) == ("ann", "12.50")
        text = f"disk almost full {uuid.uuid4().hex[:6]}"
        c.dashboard_alert(text, level="warning")
    assert (await staff.next_of("alert", timeout=15, message=text))["level"] == "warning"
    await staff.close()


async def test_a_shop_tasks_progress_reaches_its_user_and_is_read_late(fleet, shop, events_key):
    sub, name = f"py-{uuid.uuid4().hex[:8]}", f"py tasks {uuid.uuid4().hex[:6]}"
    token = sb.mint_token(sub, name, key=shop_key(shop))
    tasks = await WsClient.connect(f"{fleet.ws_url}/ws/tasks/", token)
    task_id = f"export-{uuid.uuid4().hex[:8]}"
    async with sb.AsyncClient(fleet.url, events_key) as c:
        await c.task_update(task_id, "started", sub=sub, name=name)
        await c.task_update(task_id, "progress", 50, "half way", sub=sub)
        done = await c.task_update(task_id, "completed", 100, "done", {"rows": 3}, sub=sub)
        assert (await c.task_update(task_id, "completed", 100, "done", {"rows": 3}, sub=sub)) == done  # a retry
        with pytest.raises(sb.Conflict):
            await c.task_update(task_id, "progress", 60, sub=sub)
    seen = [(await tasks.next_of("task_update", timeout=10, task_id=task_id))["status"] for _ in range(3)]
    assert seen == ["started", "progress", "completed"]
    late = httpx.get(f"{fleet.url}/api/reports/{task_id}/", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert late.status_code == 200 and late.json()["status"] == "completed"
    await tasks.close()


async def test_a_system_message_takes_the_rooms_next_seq_once_per_key(fleet, tokens, events_key):
    room = "r" + uuid.uuid4().hex[:10]
    res = httpx.post(
        f"{fleet.url}/api/chat/rooms/", json={"name": room}, headers={"Authorization": f"Bearer {tokens['bob']}"}
    )
    assert res.status_code == 201, res.text
    bob = await WsClient.connect(f"{fleet.ws_url}/ws/chat/{room}/", tokens["bob"])
    await bob.next_of("history")
    with sb.Client(fleet.url, events_key) as c:
        first = c.system_message(room, "Your order shipped", user="shop", idempotency_key=f"{room}-shipped")
        again = c.system_message(room, "Your order shipped", user="shop", idempotency_key=f"{room}-shipped")
        with pytest.raises(sb.NotFound):
            c.system_message("no-such-room-" + uuid.uuid4().hex[:6], "x")
    assert again["seq"] == first["seq"] == 1
    got = await bob.next_of("chat_message", timeout=10)
    assert (got["seq"], got["user"], got["message"], got.get("system")) == (1, "shop", "Your order shipped", True)
    assert not [f for f in await bob.drain(0.5) if f["type"] == "chat_message"]
    await bob.close()
