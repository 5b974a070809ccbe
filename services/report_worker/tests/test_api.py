"""The reports API: validation, owner-only status and files, staff-only stats, and
progress that is stored and pushed to the owner's task stream."""

import asyncio

import pytest
from channels.layers import get_channel_layer

from report_worker.models import Report
from report_worker.progress import Progress
from report_worker.reports import reports_dir
from switchboard import tokens

pytestmark = pytest.mark.django_db


def bearer(user_id, name, staff=False):
    return {"HTTP_AUTHORIZATION": "Bearer " + tokens.issue(tokens.Identity(user_id, name, staff))}


@pytest.fixture
def done_report(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path))
    report = Report.objects.create(
        task_id="6f1c2a3e-0000-4000-8000-000000000001",
        user_id=1,
        username="alice",
        type="chat_transcript",
        params={"room": "lobby"},
        status="completed",
        progress=100,
        file_name="r.csv",
    )
    (reports_dir() / "r.csv").write_text("seq,timestamp,user,message\n")
    return report


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"type": "nope"}, "unknown_type"),
        ({}, "unknown_type"),
        ({"type": "chat_transcript"}, "invalid_body"),
        ({"type": "chat_transcript", "room": "a b"}, "invalid_body"),
        ({"type": "orders_summary", "extra": 1}, "invalid_body"),
    ],
)
def test_bad_requests_are_400_and_queue_nothing(client, body, error):
    res = client.post("/api/reports/", body, content_type="application/json", **bearer(1, "alice"))
    assert res.status_code == 400 and res.json()["error"] == error
    assert Report.objects.count() == 0


def test_status_and_file_are_the_owners_only(client, done_report):
    url = f"/api/reports/{done_report.task_id}/"
    assert client.get(url, **bearer(1, "alice")).json()["result"] == {"url": done_report.download_url()}
    assert client.get(url, **bearer(2, "bob")).status_code == 404
    assert client.get(url + "download/", **bearer(1, "alice")).status_code == 200
    assert client.get(url + "download/", **bearer(2, "bob")).status_code == 404
    assert client.get(url + "download/", **bearer(3, "admin", staff=True)).status_code == 404


def test_stats_are_for_staff(client, done_report):
    assert client.get("/api/reports/stats/", **bearer(1, "alice")).status_code == 403
    stats = client.get("/api/reports/stats/", **bearer(3, "admin", staff=True)).json()
    assert stats == {"running": 0, "completed_today": 1, "failed_today": 0}


@pytest.mark.django_db(transaction=True)
async def test_progress_is_stored_and_pushed_to_the_owners_tasks_group(channel_layers):
    report = await Report.objects.acreate(task_id="t-1", user_id=7, username="alice", type="orders_summary")
    layer = get_channel_layer()
    tab = await layer.new_channel()
    await layer.group_add("tasks.user.7", tab)
    await asyncio.to_thread(Progress(report).step, 40, "halfway")
    sent = await asyncio.wait_for(layer.receive(tab), 5)
    assert '"status":"progress"' in sent["text"] and '"progress":40' in sent["text"]
    stored = await Report.objects.aget(pk=report.pk)
    assert (stored.status, stored.progress, stored.message) == ("progress", 40, "halfway")
