"""Orders over REST: created by any signed-in user, validated, listed by owner (all
for staff), pushed live to the dashboard group and notified to the buyer."""

import asyncio
import json

import pytest
from channels.layers import get_channel_layer

from dashboard.models import Order
from switchboard import tokens
from switchboard.routes import shard_channel

pytestmark = pytest.mark.django_db


def post(client, headers, body, **extra):
    return client.post("/api/orders/", json.dumps(body), content_type="application/json", **headers, **extra)


def test_anonymous_is_401(client):
    assert client.get("/api/orders/").status_code == 401
    assert post(client, {}, {"total": "1.00"}).status_code == 401


def test_create_order_returns_it_with_money_as_a_string(client, alice):
    res = post(client, alice, {"total": "12.50", "items": [{"name": "tea", "quantity": 2, "price": "6.25"}]})
    assert res.status_code == 201, res.content
    body = res.json()
    assert (body["user"], body["user_id"], body["total"], body["status"]) == ("alice", 1, "12.50", "pending")
    assert body["items"] == [{"name": "tea", "quantity": 2, "price": "6.25"}]
    assert Order.objects.get(pk=body["id"]).total == pytest.approx(12.5)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"total": "abc"},
        {"total": "-1"},
        {"total": "0"},
        {"total": "1.005"},
        {"total": "NaN"},
        {"total": "Infinity"},
        {"total": True},
        {"total": "1e20"},
        {"total": "10.00", "items": [{"name": "x", "quantity": 1, "price": "9.99"}]},
        {"total": "1.00", "items": [{"name": "", "quantity": 1, "price": "1.00"}]},
        {"total": "1.00", "surprise": 1},
    ],
)
def test_bad_bodies_are_400_with_a_message_and_store_nothing(client, alice, body):
    res = post(client, alice, body)
    assert res.status_code == 400, (body, res.content)
    assert res.json()["message"]
    assert not Order.objects.exists()


def test_not_json_is_400(client, alice):
    res = client.post("/api/orders/", "total=1", content_type="application/json", **alice)
    assert res.status_code == 400


def test_idempotency_key_makes_a_retry_return_the_first_order(client, alice, bob):
    first = post(client, alice, {"total": "5.00"}, HTTP_IDEMPOTENCY_KEY="k1")
    again = post(client, alice, {"total": "5.00"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    # Keys are per user: bob's k1 is another order.
    assert post(client, bob, {"total": "5.00"}, HTTP_IDEMPOTENCY_KEY="k1").status_code == 201
    assert post(client, alice, {"total": "5.00"}, HTTP_IDEMPOTENCY_KEY="x" * 65).status_code == 400
    reused = post(client, alice, {"total": "6.00"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert reused.status_code == 409 and "different order" in reused.json()["message"]
    assert Order.objects.count() == 2


def test_users_list_their_own_orders_and_staff_list_all_paged(client, alice, bob, admin):
    for headers, total in ((alice, "1.00"), (bob, "2.00"), (alice, "3.00")):
        assert post(client, headers, {"total": total}).status_code == 201
    mine = client.get("/api/orders/", **alice).json()
    assert mine["count"] == 2 and [o["total"] for o in mine["orders"]] == ["3.00", "1.00"]
    everything = client.get("/api/orders/?limit=2&offset=1", **admin).json()
    assert everything["count"] == 3 and [o["total"] for o in everything["orders"]] == ["2.00", "1.00"]
    service = {"HTTP_AUTHORIZATION": "Bearer " + tokens.service_token("report-worker")}
    assert client.get("/api/orders/", **service).json()["count"] == 3
    assert set(everything["orders"][0]) >= {"id", "user", "user_id", "total", "status", "created"}
    for bad in ("limit=0", "limit=201", "limit=x", "offset=-1"):
        assert client.get(f"/api/orders/?{bad}", **admin).status_code == 400


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("channel_layers")
async def test_new_order_reaches_the_dashboard_group_and_the_buyer_is_notified(async_client, alice):
    layer = get_channel_layer()
    viewer = await layer.new_channel()
    await layer.group_add("dashboard", viewer)
    res = await async_client.post(
        "/api/orders/",
        {"total": "42.00"},
        content_type="application/json",
        headers={"Authorization": alice["HTTP_AUTHORIZATION"]},
    )
    assert res.status_code == 201
    pushed = await asyncio.wait_for(layer.receive(viewer), 5)
    sent = json.loads(pushed["text"])
    assert sent["type"] == "new_order"
    assert (sent["order"]["id"], sent["order"]["user"], sent["order"]["total"]) == (res.json()["id"], "alice", "42.00")
    # The notification command waits in the notification inbox shard of the buyer.
    command = await asyncio.wait_for(get_channel_layer("inbox").receive(shard_channel("notification", "1")), 5)
    assert command["type"] == "notify.create" and command["user_id"] == 1 and "42.00" in command["message"]
