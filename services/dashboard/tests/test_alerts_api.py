"""Alerts: Alertmanager's webhook (shared secret) and plain staff alerts become stored
alerts and `alert` frames; a state Alertmanager repeats is stored and pushed once."""

import asyncio
import json

import pytest
from channels.layers import get_channel_layer

from dashboard.models import Alert

pytestmark = pytest.mark.django_db
SECRET = "s3cret-for-tests"


@pytest.fixture(autouse=True)
def webhook_secret(monkeypatch):
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET", SECRET)


def alertmanager_payload(
    status="firing", severity="critical", fingerprint="abc123", starts="2026-11-25T07:00:00.123456789Z"
):
    """What Alertmanager 0.27 posts to a webhook receiver (version 4)."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "switchboard",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate", "severity": severity},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "HighErrorRate", "severity": severity, "service": "chat"},
                "annotations": {"summary": "chat inbox errors above 5%", "description": "see the runbook"},
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": fingerprint,
            }
        ],
    }


def post(client, body, secret=None, headers=None):
    extra = dict(headers or {})
    if secret is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    return client.post("/api/dashboard/alerts/", json.dumps(body), content_type="application/json", **extra)


def test_webhook_with_the_secret_stores_the_alert_with_level_and_summary(client):
    res = post(client, alertmanager_payload(), secret=SECRET)
    assert res.status_code == 200, res.content
    assert res.json()["stored"] == 1
    alert = Alert.objects.get()
    assert (alert.level, alert.status, alert.name, alert.message) == (
        "critical",
        "firing",
        "HighErrorRate",
        "chat inbox errors above 5%",
    )


def test_webhook_repeats_are_stored_once_and_resolution_is_a_new_alert(client):
    assert post(client, alertmanager_payload(), secret=SECRET).json()["stored"] == 1
    assert post(client, alertmanager_payload(), secret=SECRET).json()["stored"] == 0
    resolved = post(client, alertmanager_payload(status="resolved"), secret=SECRET).json()
    assert resolved["stored"] == 1 and resolved["alerts"][0]["message"].startswith("Resolved:")
    # The same rule firing again later is a new state.
    assert post(client, alertmanager_payload(starts="2026-11-25T08:00:00Z"), secret=SECRET).json()["stored"] == 1
    assert Alert.objects.count() == 3


def test_wrong_or_missing_secret_is_refused_and_an_empty_secret_disables_the_webhook(client, alice, monkeypatch):
    assert post(client, alertmanager_payload(), secret="wrong").status_code == 401
    assert post(client, alertmanager_payload()).status_code == 401
    assert post(client, alertmanager_payload(), headers=alice).status_code == 403
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET", "")
    assert post(client, alertmanager_payload(), secret="").status_code == 401
    assert not Alert.objects.exists()


def test_during_a_rotation_both_secrets_are_accepted(client, monkeypatch):
    monkeypatch.setenv("ALERT_WEBHOOK_SECRET", f"new-secret,{SECRET}")
    assert post(client, alertmanager_payload(fingerprint="a"), secret="new-secret").status_code == 200
    assert post(client, alertmanager_payload(fingerprint="b"), secret=SECRET).status_code == 200
    assert post(client, alertmanager_payload(fingerprint="c"), secret="new-secret,").status_code == 401


def test_staff_post_plain_alerts_and_read_the_latest(client, admin, alice):
    res = post(client, {"level": "warning", "message": "deploy at 10:00"}, headers=admin)
    assert res.status_code == 200 and res.json()["alerts"][0]["level"] == "warning"
    assert Alert.objects.get().created_by == "admin"
    listed = client.get("/api/dashboard/alerts/", **admin).json()["alerts"]
    assert [a["message"] for a in listed] == ["deploy at 10:00"]
    assert client.get("/api/dashboard/alerts/", **alice).status_code == 403


@pytest.mark.parametrize(
    "body",
    [{}, {"message": ""}, {"level": "doom", "message": "x"}, {"message": "x" * 2001}, {"alerts": "nope"}, [1]],
)
def test_bad_alert_bodies_are_400(client, admin, body):
    res = post(client, body, headers=admin)
    assert res.status_code == 400 and res.json()["message"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("channel_layers")
async def test_a_webhook_alert_becomes_an_alert_frame_for_the_dashboard_group(async_client):
    layer = get_channel_layer()
    viewer = await layer.new_channel()
    await layer.group_add("dashboard", viewer)
    res = await async_client.post(
        "/api/dashboard/alerts/",
        alertmanager_payload(severity="warning"),
        content_type="application/json",
        headers={"Authorization": f"Bearer {SECRET}"},
    )
    assert res.status_code == 200
    sent = json.loads((await asyncio.wait_for(layer.receive(viewer), 5))["text"])
    assert (sent["type"], sent["level"], sent["message"]) == ("alert", "warning", "chat inbox errors above 5%")


def test_an_oversized_notification_keeps_the_first_alerts_rather_than_refusing_all(client, monkeypatch):
    from dashboard import views

    monkeypatch.setattr(views, "MAX_ALERTS_PER_POST", 2)
    payload = alertmanager_payload()
    payload["alerts"] = [dict(payload["alerts"][0], fingerprint=f"f{i}") for i in range(3)]
    body = post(client, payload, secret=SECRET).json()
    assert (body["received"], body["stored"], body["truncated"]) == (2, 2, 1)
