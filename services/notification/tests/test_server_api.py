"""The server API's notify (POST /api/notifications/send/): by API key, stored, counted in
unread; a retry with the same Idempotency-Key stores it once and gets the same answer."""

import pytest

from notification import store
from notification.models import Notification
from switchboard import apikeys
from switchboard.testing import make_api_key

pytestmark = pytest.mark.usefixtures("channel_layers")
URL = "/api/notifications/send/"


@pytest.fixture
def key(redis_url):
    yield make_api_key("notify")
    apikeys.reset()


def send(client, key, body, idem=None):
    headers = {"HTTP_AUTHORIZATION": key}
    if idem is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = idem
    return client.post(URL, body, content_type="application/json", **headers)


@pytest.mark.django_db
def test_a_notification_by_local_id_is_stored_and_counted(client, key):
    res = send(client, key, {"user_id": 7, "title": "Order shipped", "message": "#12", "url": "/orders/12/"})
    assert res.status_code == 201, res.content
    body = res.json()
    assert body["user_id"] == 7 and body["title"] == "Order shipped" and not body["is_read"]
    assert store.unread_count(7) == 1


@pytest.mark.django_db
def test_the_same_idempotency_key_stores_once_and_answers_the_same(client, key):
    body = {"user_id": 7, "title": "Order shipped"}
    first = send(client, key, body, idem="order-12-shipped")
    again = send(client, key, body, idem="order-12-shipped")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert store.unread_count(7) == 1
    other = send(client, key, {**body, "title": "Something else"}, idem="order-12-shipped")
    assert other.status_code == 409
    # The key is per user: another user's notification may use it.
    assert send(client, key, {**body, "user_id": 8}, idem="order-12-shipped").status_code == 201


@pytest.mark.django_db
def test_the_database_refuses_a_second_row_for_one_key():
    # Not a check before the insert: two retries racing each other both insert, and the
    # unique constraint lets one row in (create_once then reads that row).
    from django.db import IntegrityError, transaction

    Notification.objects.create(user_id=9, title="t", idempotency_key="race")
    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.create(user_id=9, title="t", idempotency_key="race")
    assert store.create_once(9, "t", "", "", "race")[1] is False
    assert Notification.objects.filter(user_id=9).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"title": "nobody named"},
        {"user_id": 7, "sub": "shop-7", "title": "both named"},
        {"user_id": 7, "name": "x", "title": "name without sub"},
        {"user_id": 7, "title": "t", "url": "javascript:alert(1)"},
    ],
)
def test_a_body_that_names_no_single_user_or_a_bad_link_is_400(client, key, body):
    assert send(client, key, body).status_code == 400


@pytest.mark.django_db
def test_a_key_without_notify_or_a_user_token_is_refused(client, redis_url):
    chat_only = make_api_key("chat")
    assert send(client, chat_only, {"user_id": 7, "title": "t"}).status_code == 403
    from switchboard import tokens

    staff = "Bearer " + tokens.issue(tokens.Identity(3, "admin", True))
    assert send(client, staff, {"user_id": 7, "title": "t"}).status_code == 401
    assert store.unread_count(7) == 0


@pytest.mark.django_db
def test_a_malformed_idempotency_key_is_400(client, key):
    assert send(client, key, {"user_id": 7, "title": "t"}, idem="has space").status_code == 400
    assert send(client, key, {"user_id": 7, "title": "t"}, idem="x" * 65).status_code == 400


@pytest.mark.django_db
def test_a_shop_user_when_the_user_directory_does_not_answer_is_502(client, key, directory_down):
    res = send(client, key, {"sub": "shop-7", "title": "Order shipped"})
    assert res.status_code == 502
    assert res.json()["error"] == "upstream_error" and "could not resolve the user" in res.json()["message"]
    assert not Notification.objects.exists()
