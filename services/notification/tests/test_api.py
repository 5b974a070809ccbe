"""The notification REST API: each user sees and marks only their own; staff create."""

import pytest

from notification import store, views
from switchboard import tokens

# transaction=True: the views do their database work on switchboard.dbthread's threads, whose
# connections see only what is committed.
pytestmark = [pytest.mark.usefixtures("channel_layers"), pytest.mark.django_db(transaction=True)]


def bearer(user_id, username, staff=False) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {tokens.issue(tokens.Identity(user_id, username, staff))}"}


ALICE, BOB, ADMIN = bearer(1, "alice"), bearer(2, "bob"), bearer(3, "admin", True)


def resolver(ids: dict):
    """views.resolve_user as ws-gateway would answer for these users (async, as the view awaits it)."""

    async def resolve(name):
        return ids.get(name)

    return resolve


def test_list_is_own_newest_first_paginated_and_filtered(client):
    for i in range(3):
        store.create(1, f"n{i}", "m")
    store.create(2, "bob's", "m")
    store.mark_read(1, store.page(1, False, 1, 2)[0][0]["id"])  # the oldest
    body = client.get("/api/notifications/?unread=1&limit=1", **ALICE).json()
    assert body["count"] == 2 and body["unread_count"] == 2 and [n["title"] for n in body["notifications"]] == ["n2"]
    assert client.get("/api/notifications/", **ALICE).json()["count"] == 3
    assert client.get("/api/notifications/?limit=0", **ALICE).status_code == 400
    assert client.get("/api/notifications/").status_code == 401


def test_read_and_read_all_touch_only_own(client):
    mine = store.create(1, "a", "m")
    theirs = store.create(2, "b", "m")
    assert client.post(f"/api/notifications/{theirs['id']}/read/", **ALICE).status_code == 404
    assert client.post(f"/api/notifications/{mine['id']}/read/", **ALICE).json() == {"unread_count": 0}
    store.create(1, "c", "m")
    assert client.post("/api/notifications/read-all/", **ALICE).json() == {"unread_count": 0}
    assert store.unread_count(2) == 1


def test_staff_create_resolves_the_user_and_others_may_not(client, monkeypatch):
    monkeypatch.setattr(views, "resolve_user", resolver({"bob": 2}))
    body = {"user": "bob", "title": "Hi", "message": "m", "url": "/x/"}
    assert client.post("/api/notifications/", body, content_type="application/json", **ALICE).status_code == 403
    res = client.post("/api/notifications/", body, content_type="application/json", **ADMIN)
    assert res.status_code == 201 and res.json()["user_id"] == 2 and store.unread_count(2) == 1
    res = client.post("/api/notifications/", {**body, "user": "ghost"}, content_type="application/json", **ADMIN)
    assert res.status_code == 400 and "ghost" in res.json()["message"]
    res = client.post("/api/notifications/", {"user": "bob"}, content_type="application/json", **ADMIN)
    assert res.status_code == 400 and "title" in res.json()["message"]


def test_staff_create_is_201_when_stored_even_if_the_live_push_fails(client, monkeypatch, settings):
    """A 500 after the row is stored would make the caller retry and store it twice; the
    tab that missed the push reads it from the unread list on its next connect."""
    from switchboard.settings_base import channel_layers as layers_config

    settings.CHANNEL_LAYERS = layers_config("redis://127.0.0.1:1/0")  # nothing listens there
    monkeypatch.setattr(views, "resolve_user", resolver({"bob": 2}))
    body = {"user": "bob", "title": "while Redis is down"}
    res = client.post("/api/notifications/", body, content_type="application/json", **ADMIN)
    assert res.status_code == 201
    assert [n["title"] for n in store.page(2, True, 10, 0)[0]] == ["while Redis is down"]
