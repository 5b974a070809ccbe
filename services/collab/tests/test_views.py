"""collab's REST API: who sees which document, and the text it returns. (Sharing asks
ws-gateway for the user's id; the e2e suite covers it through the fleet.)"""

from __future__ import annotations

import pytest

from collab import store
from switchboard.tokens import Identity, issue

pytestmark = pytest.mark.django_db

ALICE, BOB, CAROL = Identity(1, "alice"), Identity(2, "bob"), Identity(3, "carol")


def auth(who: Identity) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {issue(who)}"}


def test_create_list_and_read_a_document(client):
    res = client.post(
        "/api/collab/documents/", {"title": "Notes", "content": "héllo"}, content_type="application/json", **auth(ALICE)
    )
    assert res.status_code == 201
    doc_id = res.json()["id"]
    assert [d["title"] for d in client.get("/api/collab/documents/", **auth(ALICE)).json()["documents"]] == ["Notes"]
    body = client.get(f"/api/collab/documents/{doc_id}/", **auth(ALICE)).json()
    assert (body["content"], body["seq"], body["role"], body["shared_with"]) == ("héllo", 0, "owner", [])


def test_others_see_only_what_is_shared_with_them(client):
    doc = store.create_document(ALICE, "Plans", "secret")
    store.share(doc, BOB.id, "bob", "read")
    assert client.get("/api/collab/documents/", **auth(CAROL)).json()["documents"] == []
    assert client.get(f"/api/collab/documents/{doc.pk}/", **auth(CAROL)).status_code == 403
    body = client.get(f"/api/collab/documents/{doc.pk}/", **auth(BOB)).json()
    assert (body["content"], body["role"]) == ("secret", "read")
    assert "shared_with" not in body  # the owner's business
    assert client.get("/api/collab/documents/999999/", **auth(BOB)).status_code == 404
    assert client.get(f"/api/collab/documents/{doc.pk}/").status_code == 401
    res = client.post(
        f"/api/collab/documents/{doc.pk}/share/",
        {"username": "carol", "role": "edit"},
        content_type="application/json",
        **auth(BOB),
    )
    assert res.status_code == 403  # only the owner shares


def test_a_bad_body_is_a_400_with_the_field_named(client):
    res = client.post("/api/collab/documents/", {"title": ""}, content_type="application/json", **auth(ALICE))
    assert res.status_code == 400 and "title" in res.json()["message"]
