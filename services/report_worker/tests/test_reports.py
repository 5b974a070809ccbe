"""The report worker: request checks, queueing on the real Redis broker, the task's
progress frames, record, file and notification, owner-only reads, and the PDF."""

import asyncio
from decimal import Decimal

import httpx
import pytest
import redis
from channels.layers import get_channel_layer

from report_worker import reports, tasks
from report_worker.celery_app import app
from report_worker.models import Report, ReportFile
from switchboard import tokens
from switchboard.routes import shard_channel

pytestmark = [pytest.mark.usefixtures("channel_layers"), pytest.mark.django_db(transaction=True)]


def bearer(user_id, username, staff=False) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {tokens.issue(tokens.Identity(user_id, username, staff))}"}


ALICE, BOB, ADMIN = bearer(1, "alice"), bearer(2, "bob"), bearer(3, "admin", True)


@pytest.fixture
def broker(redis_url, monkeypatch):
    # The app read REDIS_URL at import; point it at this session's Redis.
    monkeypatch.setattr(app.conf, "broker_url", redis_url)
    monkeypatch.setattr(app, "_pool", None)  # a connection pool to that broker, made on use
    yield redis.Redis.from_url(redis_url)


@pytest.fixture
def settings_dir(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("REPORT_STEP_SECONDS", "0")
    return tmp_path


def post(client, body, who=ALICE):
    return client.post("/api/reports/", body, content_type="application/json", **who)


def test_bad_requests_are_400_with_a_clear_message(client):
    assert "unknown report type 'pie'" in post(client, {"type": "pie"}).json()["message"]
    assert "'room'" in post(client, {"type": "chat_transcript"}).json()["message"]
    assert post(client, {"type": "chat_transcript", "room": " "}).status_code == 400
    assert post(client, {}).status_code == 400
    assert client.post("/api/reports/", b"{", content_type="application/json", **ALICE).status_code == 400
    assert Report.objects.count() == 0


def test_request_is_recorded_and_queued_on_the_broker(client, broker):
    res = post(client, {"type": "chat_transcript", "room": "lobby"})
    assert res.status_code == 202
    task_id = res.json()["task_id"]
    record = Report.objects.get(task_id=task_id)
    assert record.user_id == 1 and record.params == {"room": "lobby"} and record.status == "pending"
    # The requester as the token said: the task reads the owning services as this user.
    assert record.requester == tokens.Identity(1, "alice", False)
    assert broker.llen("reports") == 1
    assert client.get(f"/api/reports/{task_id}/", **ALICE).json()["status"] == "pending"
    assert client.get(f"/api/reports/{task_id}/", **BOB).status_code == 404


def _fake_type(params, step, identity):
    for p in (20, 50, 80):
        step(p, f"at {p}")
    return b"a,b\n1,2\n", "test.csv", "text/csv"


def _broken_type(params, step, identity):
    step(10, "reading")
    raise reports.ReportError("there is no chat room 'x'")


async def _run_task(report_id):
    await asyncio.to_thread(tasks.generate_report.apply, (report_id,))


async def test_task_streams_progress_stores_the_file_and_notifies(client, settings_dir, monkeypatch):
    monkeypatch.setitem(tasks.BUILDERS, "chat_transcript", _fake_type)
    report = await Report.objects.acreate(task_id="t-1", user_id=1, kind="chat_transcript", params={"room": "x"})
    layer = get_channel_layer()
    tab = await layer.new_channel()
    await layer.group_add("tasks.user.1", tab)
    await _run_task(report.pk)
    frames = []
    while not frames or '"completed"' not in frames[-1]:
        frames.append((await asyncio.wait_for(layer.receive(tab), 5))["text"])
    assert '"status":"started"' in frames[0]
    assert sum('"status":"progress"' in f for f in frames) >= 3
    assert '"url":"/api/reports/t-1/download/"' in frames[-1]
    await report.arefresh_from_db()
    assert (report.status, report.progress, report.attempts) == ("completed", 100, 1)
    # Stored in the service's database, where every HTTP replica reads it (no pod disk).
    assert bytes((await ReportFile.objects.aget(report=report)).data) == b"a,b\n1,2\n"
    command = await asyncio.wait_for(get_channel_layer("inbox").receive(shard_channel("notification", "1")), 5)
    assert command["type"] == "notify.create" and command["url"] == "/api/reports/t-1/download/"

    res = await asyncio.to_thread(client.get, "/api/reports/t-1/download/", **ALICE)
    assert res.status_code == 200 and b"".join(res.streaming_content) == b"a,b\n1,2\n"
    assert (await asyncio.to_thread(client.get, "/api/reports/t-1/download/", **BOB)).status_code == 404
    # A redelivery of a finished task does not run it again.
    await _run_task(report.pk)
    await report.arefresh_from_db()
    assert report.attempts == 1


async def test_failing_task_reports_failed_with_the_reason(settings_dir, monkeypatch, caplog):
    monkeypatch.setitem(tasks.BUILDERS, "chat_transcript", _broken_type)
    report = await Report.objects.acreate(task_id="t-2", user_id=2, kind="chat_transcript", params={"room": "x"})
    await _run_task(report.pk)
    await report.arefresh_from_db()
    assert report.status == "failed" and report.message == "there is no chat room 'x'"
    command = await asyncio.wait_for(get_channel_layer("inbox").receive(shard_channel("notification", "2")), 5)
    assert command["title"].startswith("Report failed")
    # A report that cannot be made is the requester's mistake, not a bug: no traceback
    # (Celery logged one per such report, and the campaign fails on any).
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


def test_stats_are_staff_only_and_count_today(client):
    Report.objects.create(task_id="a", user_id=1, kind="orders_summary", status="progress")
    assert client.get("/api/reports/stats/", **ALICE).status_code == 403
    assert client.get("/api/reports/stats/", **ADMIN).json() == {"running": 1, "completed_today": 0, "failed_today": 0}


def test_orders_pdf_is_a_real_pdf():
    orders = [
        {"id": i, "user": "alice", "user_id": 1, "total": "10.50", "status": s, "created": "2026-01-01T00:00:00"}
        for i, s in enumerate(["paid", "paid", "pending"])
    ]
    counts = {"paid": 2, "pending": 1}
    pdf = reports._orders_pdf(orders, counts, {"paid": Decimal("21.00"), "pending": Decimal("10.50")})
    assert pdf.startswith(b"%PDF") and len(pdf) > 1000


def test_a_report_calls_the_owning_service_with_the_requesters_token_each_time():
    """Not a staff service token: the owning service applies the requester's rights."""
    seen = []

    def answer(request):
        seen.append(tokens.verify(request.headers["Authorization"].removeprefix("Bearer ")))
        return httpx.Response(200, json={"ok": True})

    bob = tokens.Identity(2, "bob", False)
    with reports._client(bob) as client:
        client._transport = httpx.MockTransport(answer)
        reports._get(client, "/api/orders/")
        reports._get(client, "/api/orders/")
    assert seen == [bob, bob]
