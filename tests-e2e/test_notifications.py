"""Notifications end to end, through nginx: pushed to every tab of their user and to
nobody else, counts that follow mark_read in every tab, and the count after a reconnect."""

from __future__ import annotations

import time

import httpx
from wsclient import Client


def auth(token):
    return {"Authorization": f"Bearer {token}"}


async def open_stream(fleet, token) -> tuple[Client, int]:
    client = await Client.connect(f"{fleet.ws_url}/ws/notifications/", token)
    return client, (await client.next_of("unread_count"))["count"]


def send(fleet, tokens, user="alice", title="Hello", message="A message", url="/x/"):
    return httpx.post(
        f"{fleet.url}/api/notifications/",
        headers=auth(tokens["admin"]),
        json={"user": user, "title": title, "message": message, "url": url},
    )


async def test_staff_notification_reaches_both_tabs_of_its_user_only_within_a_second(fleet, tokens):
    tab1, count = await open_stream(fleet, tokens["alice"])
    tab2, _ = await open_stream(fleet, tokens["alice"])
    bob, _ = await open_stream(fleet, tokens["bob"])
    started = time.monotonic()
    res = send(fleet, tokens, title="Order shipped")
    assert res.status_code == 201, res.text
    note_id = res.json()["id"]
    for tab in (tab1, tab2):
        note = await tab.next_of("notification", id=note_id)
        assert (note["title"], note["message"], note["url"]) == ("Order shipped", "A message", "/x/")
        assert "timestamp" in note
        assert (await tab.next_of("unread_count"))["count"] == count + 1
    assert time.monotonic() - started < 1.0
    assert not [f for f in await bob.drain(0.5) if f["type"] == "notification"]

    await tab1.send({"type": "mark_read", "notification_id": note_id})
    for tab in (tab1, tab2):
        assert (await tab.next_of("unread_count"))["count"] == count
    for client in (tab1, tab2, bob):
        await client.close()


async def test_offline_user_sees_the_count_on_next_connect_and_rest_agrees(fleet, tokens):
    _, before = await open_stream(fleet, tokens["bob"])
    for i in range(3):
        assert send(fleet, tokens, user="bob", title=f"n{i}").status_code == 201
    time.sleep(0.5)
    client, count = await open_stream(fleet, tokens["bob"])
    assert count == before + 3
    listed = httpx.get(f"{fleet.url}/api/notifications/?unread=1", headers=auth(tokens["bob"])).json()
    assert listed["unread_count"] == count
    assert [n["title"] for n in listed["notifications"][:3]] == ["n2", "n1", "n0"]
    await client.send({"type": "mark_all_read"})
    assert (await client.next_of("unread_count", count=0))["count"] == 0
    await client.close()


async def test_no_one_reads_counts_or_marks_another_users_notifications(fleet, tokens):
    note_id = send(fleet, tokens, user="alice", title="private").json()["id"]
    bob, bob_count = await open_stream(fleet, tokens["bob"])
    await bob.send({"type": "mark_read", "notification_id": note_id})
    error = await bob.next_of("error")
    assert error["code"] == "not_found"
    assert httpx.post(f"{fleet.url}/api/notifications/{note_id}/read/", headers=auth(tokens["bob"])).status_code == 404
    titles = [
        n["title"]
        for n in httpx.get(f"{fleet.url}/api/notifications/", headers=auth(tokens["bob"])).json()["notifications"]
    ]
    assert "private" not in titles
    alice = httpx.get(f"{fleet.url}/api/notifications/?unread=1", headers=auth(tokens["alice"])).json()
    assert note_id in [n["id"] for n in alice["notifications"]]
    await bob.close()


def test_only_staff_send_and_bad_bodies_are_400(fleet, tokens):
    url = f"{fleet.url}/api/notifications/"
    assert (
        httpx.post(url, headers=auth(tokens["alice"]), json={"user": "bob", "title": "t", "message": "m"}).status_code
        == 403
    )
    assert httpx.post(url, json={"user": "bob", "title": "t", "message": "m"}).status_code == 401
    assert send(fleet, tokens, user="nobody-here").status_code == 400
    assert httpx.post(url, headers=auth(tokens["admin"]), json={"user": "bob"}).status_code == 400
