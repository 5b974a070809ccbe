"""Notifications are always one user's: the store and the REST API never cross users."""

import pytest

from notification import store
from switchboard import tokens

pytestmark = pytest.mark.django_db


def bearer(user_id, name, staff=False):
    return {"HTTP_AUTHORIZATION": "Bearer " + tokens.issue(tokens.Identity(user_id, name, staff))}


def test_store_is_scoped_to_the_user():
    mine = store.create(1, "t", "m")
    assert not store.mark_read(2, mine.pk)  # bob cannot mark alice's
    assert store.unread_count(1) == 1
    assert store.mark_read(1, mine.pk)
    assert store.unread_count(1) == 0
    store.create(1, "a", "m")
    store.create(2, "b", "m")
    assert store.mark_all_read(1) == 1
    assert store.unread_count(2) == 1


def test_list_is_newest_first_paginated_and_filtered(client):
    for i in range(5):
        store.create(1, f"n{i}", "m")
    store.mark_read(1, store.page(1, False, None, 1)[0][0]["id"])
    body = client.get("/api/notifications/?limit=2", **bearer(1, "alice")).json()
    assert [n["title"] for n in body["notifications"]] == ["n4", "n3"] and body["has_more"]
    unread = client.get("/api/notifications/?unread=1", **bearer(1, "alice")).json()
    assert [n["title"] for n in unread["notifications"]] == ["n3", "n2", "n1", "n0"]
    assert unread["unread_count"] == 4
    assert client.get("/api/notifications/", **bearer(2, "bob")).json()["notifications"] == []
    assert client.get("/api/notifications/?limit=x", **bearer(1, "alice")).status_code == 400


def test_read_endpoints_refuse_other_users_ids(client, channel_layers):
    note = store.create(1, "t", "m")
    assert client.post(f"/api/notifications/{note.pk}/read/", **bearer(2, "bob")).status_code == 404
    res = client.post(f"/api/notifications/{note.pk}/read/", **bearer(1, "alice"))
    assert res.status_code == 200 and res.json() == {"unread_count": 0}


def test_sending_is_for_staff_with_a_valid_body(client):
    body = {"user": "alice", "title": "t", "message": "m"}
    assert client.post("/api/notifications/", body, content_type="application/json").status_code == 401
    assert (
        client.post("/api/notifications/", body, content_type="application/json", **bearer(2, "bob")).status_code == 403
    )
    res = client.post(
        "/api/notifications/", {"user": "alice"}, content_type="application/json", **bearer(3, "admin", staff=True)
    )
    assert res.status_code == 400 and "title" in res.json()["message"]
