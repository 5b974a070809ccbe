"""Chat's REST API: rooms and paginated history, for token holders only."""

import pytest

from chat import store
from chat.models import ChatRoom
from switchboard import tokens

pytestmark = pytest.mark.django_db


@pytest.fixture
def auth():
    token = tokens.issue(tokens.Identity(1, "alice"))
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_no_token_is_401(client):
    assert client.get("/api/chat/rooms/").status_code == 401


def test_create_and_list_rooms(client, auth):
    res = client.post("/api/chat/rooms/", {"name": "Big News"}, content_type="application/json", **auth)
    assert res.status_code == 201 and res.json()["slug"] == "big-news"
    again = client.post("/api/chat/rooms/", {"name": "Big News"}, content_type="application/json", **auth)
    assert again.status_code == 409
    assert [r["slug"] for r in client.get("/api/chat/rooms/", **auth).json()["rooms"]] == ["big-news"]


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x", "slug": "bad slug!"}, {"name": "!!!"}])
def test_bad_room_bodies_are_400_with_a_message(client, auth, body):
    res = client.post("/api/chat/rooms/", body, content_type="application/json", **auth)
    assert res.status_code == 400 and res.json()["message"]


def test_messages_page_and_errors(client, auth):
    room = ChatRoom.objects.create(name="L", slug="lobby")
    for i in range(3):
        store.post_message(room.pk, tokens.Identity(1, "alice"), f"m{i}", None)
    body = client.get("/api/chat/rooms/lobby/messages/?before=3&limit=1", **auth).json()
    assert [m["message"] for m in body["messages"]] == ["m1"] and body["has_more"]
    assert client.get("/api/chat/rooms/none/messages/", **auth).status_code == 404
    assert client.get("/api/chat/rooms/lobby/messages/?limit=abc", **auth).status_code == 400
    assert client.get("/api/chat/rooms/lobby/messages/?limit=100000", **auth).status_code == 400


def test_the_openapi_document_is_the_code(client, auth):
    """Served without a token, built from the URLconf and the views' models: the
    body's limits and the query's bounds are the ones the views enforce."""
    doc = client.get("/api/chat/openapi.json").json()
    assert set(doc["paths"]) == {
        "/api/chat/openapi.json",
        "/api/chat/rooms/",
        "/api/chat/rooms/{slug}/messages/",
        "/api/chat/rooms/{slug}/system-messages/",
    }
    # The server API's operation takes an API key, not a user's token.
    system = doc["paths"]["/api/chat/rooms/{slug}/system-messages/"]["post"]
    assert system["security"] == [{"apiKey": []}] and {"401", "403", "429", "503"} <= set(system["responses"])
    room = doc["paths"]["/api/chat/rooms/"]["post"]
    assert (
        room["requestBody"]["content"]["application/json"]["schema"]["properties"]["description"]["maxLength"] == 2000
    )
    assert set(room["responses"]) == {"201", "400", "401", "409", "413"}
    limit = next(
        p for p in doc["paths"]["/api/chat/rooms/{slug}/messages/"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 200)
    ChatRoom.objects.create(name="L", slug="lobby")
    res = client.get("/api/chat/rooms/lobby/messages/?limit=201", **auth)
    assert res.status_code == 400 and res.json()["message"].startswith("limit:")


def test_unsupported_method_is_405_with_allow_and_unknown_url_is_json_404(client, auth):
    res = client.delete("/api/chat/rooms/", **auth)
    assert res.status_code == 405 and res["Allow"] == "GET, POST"
    res = client.get("/api/chat/nothing-here/", **auth)
    assert res.status_code == 404 and res.json()["error"] == "not_found"
