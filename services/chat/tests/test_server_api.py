"""The server API's system messages: the view's side (the inbox's is in test_inbox.py)."""

import pytest

from chat.models import ChatRoom
from switchboard import apikeys
from switchboard.testing import make_api_key

pytestmark = [pytest.mark.usefixtures("channel_layers"), pytest.mark.django_db]


@pytest.fixture
def key(redis_url):
    yield make_api_key("chat")
    apikeys.reset()


def test_an_unknown_room_is_404_and_a_bad_body_400(client, key):
    ChatRoom.objects.create(name="Lobby", slug="lobby")

    def post(slug, body):
        url = f"/api/chat/rooms/{slug}/system-messages/"
        return client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=key)

    assert post("nowhere", {"message": "x"}).status_code == 404
    assert post("lobby", {"message": ""}).status_code == 400
    assert post("lobby", {"message": "x", "seq": 3}).status_code == 400


def test_a_key_without_the_chat_scope_is_403(client, redis_url):
    ChatRoom.objects.create(name="Lobby", slug="lobby")
    res = client.post(
        "/api/chat/rooms/lobby/system-messages/",
        {"message": "x"},
        content_type="application/json",
        HTTP_AUTHORIZATION=make_api_key("notify"),
    )
    assert res.status_code == 403
