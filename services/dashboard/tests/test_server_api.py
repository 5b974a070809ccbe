"""The server API's dashboard events (POST /api/dashboard/events/): the shop's order as the
seed's new_order frame (stored only when asked), and an alert, stored and pushed."""

import asyncio
import json

import pytest
from channels.layers import get_channel_layer

from dashboard.models import Alert, Order
from switchboard import apikeys
from switchboard.testing import make_api_key

URL = "/api/dashboard/events/"
ORDER = {
    "id": "SHOP-1001",
    "user": "carol",
    "total": "12.50",
    "items": [{"name": "mug", "quantity": 1, "price": "12.50"}],
}


@pytest.fixture
def key(redis_url):
    yield make_api_key("dashboard")
    apikeys.reset()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("channel_layers")
async def test_the_shops_order_reaches_the_dashboard_group_and_is_not_stored(async_client, key):
    layer = get_channel_layer()
    viewer = await layer.new_channel()
    await layer.group_add("dashboard", viewer)
    res = await async_client.post(
        URL, {"type": "new_order", "order": ORDER}, content_type="application/json", headers={"Authorization": key}
    )
    assert res.status_code == 201, res.content
    sent = json.loads((await asyncio.wait_for(layer.receive(viewer), 5))["text"])
    assert sent["type"] == "new_order"
    assert {k: sent["order"][k] for k in ("id", "user", "total", "status")} == {
        "id": "SHOP-1001",
        "user": "carol",
        "total": "12.50",
        "status": "pending",
    }
    assert sent["order"]["created"] and sent["order"]["items"] == ORDER["items"]
    assert await Order.objects.acount() == 0


@pytest.mark.django_db
@pytest.mark.usefixtures("channel_layers")
def test_an_order_asked_to_be_stored_is_stored_once_per_idempotency_key(client, key):
    body = {"type": "new_order", "order": {**ORDER, "user_id": 5}, "store": True}
    headers = {"HTTP_AUTHORIZATION": key, "HTTP_IDEMPOTENCY_KEY": "shop-1001"}
    first = client.post(URL, body, content_type="application/json", **headers)
    again = client.post(URL, body, content_type="application/json", **headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and first.json()["stored"] is True
    assert Order.objects.filter(user_id=5).count() == 1
    no_buyer = client.post(URL, {**body, "order": ORDER}, content_type="application/json", **headers)
    assert no_buyer.status_code == 400


@pytest.mark.django_db
@pytest.mark.usefixtures("channel_layers")
def test_an_alert_is_stored_with_the_shop_as_its_source(client, key):
    res = client.post(
        URL,
        {"type": "alert", "level": "warning", "message": "payment provider slow"},
        content_type="application/json",
        HTTP_AUTHORIZATION=key,
    )
    assert res.status_code == 201, res.content
    alert = Alert.objects.get()
    assert (alert.source, alert.level, alert.message) == ("shop", "warning", "payment provider slow")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [{}, {"type": "tea"}, {"type": "alert", "message": ""}, {"type": "new_order", "order": {"id": "x"}}],
)
def test_bad_events_are_400(client, key, body):
    assert client.post(URL, body, content_type="application/json", HTTP_AUTHORIZATION=key).status_code == 400


@pytest.mark.django_db
def test_a_key_without_the_dashboard_scope_is_403(client, redis_url):
    other = make_api_key("notify")
    res = client.post(URL, {"type": "alert", "message": "x"}, content_type="application/json", HTTP_AUTHORIZATION=other)
    assert res.status_code == 403
