"""Notifications end to end, through nginx: a staff POST reaches every open tab of
its user within a second and no one else's; mark_read updates every tab; a user who
was offline gets the right count on connect; nobody can touch another's notifications;
other services' notify.create commands (switchboard.notify) are stored and pushed."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from wsclient import Client


def auth(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


async def open_tab(fleet, tok) -> tuple[Client, int]:
    client = await Client.connect(f"{fleet.ws_url}/ws/notifications/", tok)
    count = (await client.next_of("unread_count", timeout=15))["count"]
    return client, count


async def staff_send(fleet, tokens, user: str, title: str) -> dict:
    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.post(
            f"{fleet.url}/api/notifications/",
            json={"user": user, "title": title, "message": "m", "url": "/x/"},
            headers=auth(tokens["admin"]),
        )
    assert res.status_code == 201, res.text
    return res.json()


async def test_staff_notification_reaches_both_tabs_of_the_user_only(fleet, tokens):
    tab1, count0 = await open_tab(fleet, tokens["alice"])
    tab2, _ = await open_tab(fleet, tokens["alice"])
    other, bob_count = await open_tab(fleet, tokens["bob"])
    title = "hello " + uuid.uuid4().hex[:6]

    start = time.monotonic()
    created = await staff_send(fleet, tokens, "alice", title)
    got = await asyncio.gather(*(t.next_of("notification", timeout=10, title=title) for t in (tab1, tab2)))
    elapsed = time.monotonic() - start
    print(f"staff POST to notification in two tabs: {elapsed * 1000:.0f} ms")
    assert elapsed < 1.0
    for frame in got:
        assert frame["id"] == created["id"]
        assert frame["message"] == "m" and frame["url"] == "/x/" and frame["timestamp"]
    for tab in (tab1, tab2):
        assert (await tab.next_of("unread_count", timeout=10))["count"] == count0 + 1
    assert not [f for f in await other.drain(0.5) if f["type"] == "notification"]

    # mark_read in one tab changes the count in both.
    await tab1.send({"type": "mark_read", "notification_id": created["id"]})
    for tab in (tab1, tab2):
        assert (await tab.next_of("unread_count", timeout=10))["count"] == count0

    # bob cannot mark alice's notification: answered like a missing one, count unchanged.
    await other.send({"type": "mark_read", "notification_id": created["id"]})
    assert (await other.next_of("error", timeout=10))["code"] == "not_found"
    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.post(f"{fleet.url}/api/notifications/{created['id']}/read/", headers=auth(tokens["bob"]))
        assert res.status_code == 404
        mine = (await http.get(f"{fleet.url}/api/notifications/", headers=auth(tokens["bob"]))).json()
        assert created["id"] not in [n["id"] for n in mine["notifications"]]
        assert mine["unread_count"] == bob_count
    for c in (tab1, tab2, other):
        await c.close()


async def test_offline_user_sees_count_on_connect_and_read_all(fleet, tokens):
    tab, before = await open_tab(fleet, tokens["bob"])
    await tab.close()
    for i in range(3):
        await staff_send(fleet, tokens, "bob", f"while away {i}")
    tab, count = await open_tab(fleet, tokens["bob"])
    assert count == before + 3

    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.get(f"{fleet.url}/api/notifications/?unread=1&limit=2", headers=auth(tokens["bob"]))
        body = res.json()
        assert res.status_code == 200 and body["count"] == before + 3 and len(body["notifications"]) == 2
        assert body["notifications"][0]["title"] == "while away 2"  # newest first

    await tab.send({"type": "mark_all_read"})
    assert (await tab.next_of("unread_count", timeout=10))["count"] == 0
    await tab.close()
    tab, count = await open_tab(fleet, tokens["bob"])
    assert count == 0
    await tab.close()


async def test_rest_checks(fleet, tokens):
    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.post(
            f"{fleet.url}/api/notifications/", json={"user": "bob", "title": "t"}, headers=auth(tokens["alice"])
        )
        assert res.status_code == 403
        res = await http.post(
            f"{fleet.url}/api/notifications/", json={"user": "nobody-x", "title": "t"}, headers=auth(tokens["admin"])
        )
        assert res.status_code == 400 and "nobody-x" in res.json()["message"]
        assert (await http.get(f"{fleet.url}/api/notifications/")).status_code == 401


async def test_read_all_over_rest_updates_open_tab(fleet, tokens):
    tab, _ = await open_tab(fleet, tokens["alice"])
    await staff_send(fleet, tokens, "alice", "to clear")
    await tab.next_of("notification", timeout=10, title="to clear")
    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.post(f"{fleet.url}/api/notifications/read-all/", headers=auth(tokens["alice"]))
    assert res.status_code == 200
    await tab.next_of("unread_count", timeout=10, count=0)
    await tab.close()
