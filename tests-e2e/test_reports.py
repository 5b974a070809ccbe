"""Reports end to end, through nginx: a report requested over HTTP streams progress on
/ws/tasks/ and completes; its file downloads for its owner only; a notification about
it exists; a failing report says why; a worker killed mid-report (SIGKILL) is restarted
and the report still completes; Flower is there for staff only."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid

import httpx
import pytest
from wsclient import Client


def auth(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


async def chat_room_with_messages(fleet, tokens, n: int) -> tuple[str, list[str]]:
    slug = "rep" + uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.post(f"{fleet.url}/api/chat/rooms/", json={"name": slug}, headers=auth(tokens["alice"]))
        assert res.status_code == 201, res.text
    chat = await Client.connect(f"{fleet.ws_url}/ws/chat/{slug}/", tokens["alice"])
    texts = [f"line {i}, with a comma and ünïcode" for i in range(n)]
    for i, text in enumerate(texts):
        await chat.send({"type": "chat_message", "message": text, "client_id": f"m{i}"})
        await chat.next_of("chat_message", timeout=15, client_id=f"m{i}")
    await chat.close()
    return slug, texts


async def request_report(fleet, tok, body: dict) -> str:
    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.post(f"{fleet.url}/api/reports/", json=body, headers=auth(tok))
    assert res.status_code == 202, res.text
    return res.json()["task_id"]


async def updates_until_done(tasks: Client, task_id: str, timeout: float = 60) -> list[dict]:
    frames = []
    while not frames or frames[-1]["status"] not in ("completed", "failed"):
        frames.append(await tasks.next_of("task_update", timeout=timeout, task_id=task_id))
    return frames


async def test_report_streams_progress_and_downloads_for_its_owner_only(fleet, tokens):
    slug, texts = await chat_room_with_messages(fleet, tokens, 5)
    tasks = await Client.connect(f"{fleet.ws_url}/ws/tasks/", tokens["alice"])
    task_id = await request_report(fleet, tokens["alice"], {"type": "chat_transcript", "room": slug})
    frames = await updates_until_done(tasks, task_id)
    await tasks.close()

    statuses = [f["status"] for f in frames]
    assert statuses[0] == "started" and statuses[-1] == "completed", statuses
    progress = [f for f in frames if f["status"] == "progress"]
    assert len(progress) >= 3
    values = [f["progress"] for f in frames]
    assert values == sorted(values) and values[-1] == 100
    for f in frames:
        assert set(f) >= {"task_id", "status", "progress", "message", "result", "timestamp"}
    url = frames[-1]["result"]["url"]

    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.get(f"{fleet.url}{url}", headers=auth(tokens["alice"]))
        assert res.status_code == 200
        rows = list(csv.reader(io.StringIO(res.content.decode("utf-8-sig"))))
        assert rows[0] == ["seq", "timestamp", "user", "message"]
        assert [r[3] for r in rows[1:]] == texts and {r[2] for r in rows[1:]} == {"alice"}
        assert (await http.get(f"{fleet.url}{url}", headers=auth(tokens["bob"]))).status_code in (403, 404)
        assert (await http.get(f"{fleet.url}/api/reports/{task_id}/", headers=auth(tokens["bob"]))).status_code == 404
        status = (await http.get(f"{fleet.url}/api/reports/{task_id}/", headers=auth(tokens["alice"]))).json()
        assert status["status"] == "completed" and status["result"]["url"] == url
        # The notification is created through the notification inbox, after the frame.
        for _ in range(100):
            mine = (await http.get(f"{fleet.url}/api/notifications/?limit=50", headers=auth(tokens["alice"]))).json()
            if any(n["url"] == url for n in mine["notifications"]):
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("no notification about the finished report")


async def test_failing_report_says_why_and_bad_requests_are_400(fleet, tokens):
    tasks = await Client.connect(f"{fleet.ws_url}/ws/tasks/", tokens["bob"])
    task_id = await request_report(fleet, tokens["bob"], {"type": "chat_transcript", "room": "no-such-room-x"})
    frames = await updates_until_done(tasks, task_id)
    await tasks.close()
    assert frames[-1]["status"] == "failed"
    assert "no chat room 'no-such-room-x'" in frames[-1]["message"]
    async with httpx.AsyncClient(timeout=30) as http:
        status = (await http.get(f"{fleet.url}/api/reports/{task_id}/", headers=auth(tokens["bob"]))).json()
        assert status["status"] == "failed" and "no-such-room-x" in status["message"]
        for body, words in (
            ({"type": "nonsense"}, "unknown report type"),
            ({"type": "chat_transcript"}, "'room'"),
            ({}, "type"),
        ):
            res = await http.post(f"{fleet.url}/api/reports/", json=body, headers=auth(tokens["bob"]))
            assert res.status_code == 400 and words in res.json()["message"], res.text
        stats = await http.get(f"{fleet.url}/api/reports/stats/", headers=auth(tokens["admin"]))
        assert stats.status_code == 200 and stats.json()["failed_today"] >= 1
        assert set(stats.json()) == {"running", "completed_today", "failed_today"}
        assert (await http.get(f"{fleet.url}/api/reports/stats/", headers=auth(tokens["bob"]))).status_code == 403


async def test_worker_killed_mid_report_is_restarted_and_the_report_completes(fleet, tokens):
    slug, texts = await chat_room_with_messages(fleet, tokens, 3)
    tasks = await Client.connect(f"{fleet.ws_url}/ws/tasks/", tokens["alice"])
    task_id = await request_report(fleet, tokens["alice"], {"type": "chat_transcript", "room": slug})
    await tasks.next_of("task_update", timeout=60, task_id=task_id, status="progress")
    fleet.kill("report-worker-celery")  # SIGKILL; supervisord starts it again
    # The broker gives the unacknowledged task back after the visibility timeout (10 s).
    frames = await updates_until_done(tasks, task_id, timeout=120)
    await tasks.close()
    assert frames[-1]["status"] == "completed"
    assert any(f["status"] == "started" and "again" in f["message"] for f in frames)
    async with httpx.AsyncClient(timeout=30) as http:
        status = (await http.get(f"{fleet.url}/api/reports/{task_id}/", headers=auth(tokens["alice"]))).json()
        assert status["status"] == "completed" and status["attempts"] >= 2
        res = await http.get(f"{fleet.url}{status['result']['url']}", headers=auth(tokens["alice"]))
        assert res.status_code == 200 and texts[-1] in res.content.decode("utf-8-sig")


async def test_orders_summary_pdf(fleet, tokens):
    async with httpx.AsyncClient(timeout=30) as http:
        probe = await http.get(f"{fleet.url}/api/orders/?limit=1", headers=auth(tokens["admin"]))
        if probe.status_code == 404 or "json" not in probe.headers.get("content-type", ""):
            pytest.skip("/api/orders/ is not routed in this fleet")
        order = await http.post(
            f"{fleet.url}/api/orders/",
            json={"total": "12.50"},
            headers=auth(tokens["alice"]),
        )
        assert order.status_code == 201, order.text
    tasks = await Client.connect(f"{fleet.ws_url}/ws/tasks/", tokens["admin"])
    task_id = await request_report(fleet, tokens["admin"], {"type": "orders_summary"})
    frames = await updates_until_done(tasks, task_id)
    await tasks.close()
    assert frames[-1]["status"] == "completed", frames[-1]
    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.get(f"{fleet.url}{frames[-1]['result']['url']}", headers=auth(tokens["admin"]))
    assert res.status_code == 200 and res.content.startswith(b"%PDF") and len(res.content) > 1000
    assert res.headers["content-type"] == "application/pdf"


async def test_flower_is_for_staff_only(fleet, tokens):
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{fleet.url}/flower/")).status_code == 401
        assert (await http.get(f"{fleet.url}/flower/", headers=auth(tokens["alice"]))).status_code == 403
        # Flower's API trusts whoever reaches it (FLOWER_UNAUTHENTICATED_API behind the
        # proxy's staff check): not a user who is not staff, reading or acting.
        for method, path in (
            ("GET", "/flower/api/workers"),
            ("GET", "/flower/api/tasks"),
            ("POST", "/flower/api/task/revoke/some-task"),
            ("POST", "/flower/api/worker/shutdown/celery@somewhere"),
        ):
            for who in (None, "alice"):
                headers = auth(tokens[who]) if who else {}
                res = await http.request(method, f"{fleet.url}{path}", headers=headers)
                assert res.status_code == (403 if who else 401), (method, path, who, res.status_code)
        # Its metrics and health check are for Prometheus and the probes, on Flower's own
        # port: the proxy refuses them to everyone, staff included, however spelled.
        for path in ("/flower/metrics", "/flower/metrics?x=1", "/flower/%6detrics", "/flower//metrics",
                     "/flower/./metrics", "/flower/healthcheck"):  # fmt: skip
            for who in (None, "alice", "admin"):
                headers = auth(tokens[who]) if who else {}
                res = await http.get(f"{fleet.url}{path}", headers=headers)
                assert res.status_code == 404 and "flower_" not in res.text, (path, who, res.status_code)
        res = await http.get(f"{fleet.url}/flower/", headers=auth(tokens["admin"]), follow_redirects=True)
        assert res.status_code == 200 and "Flower" in res.text
        # Flower asks the workers (remote control); a busy machine may answer late.
        for _ in range(30):
            res = await http.get(f"{fleet.url}/flower/api/workers?refresh=1", headers=auth(tokens["admin"]))
            assert res.status_code == 200
            if res.json():
                break
            await asyncio.sleep(1)
        assert res.json(), "Flower knows no worker"
    # Prometheus scrapes Flower's port directly: Celery task states are there.
    port = fleet.program("report-worker-flower").http_port
    metrics = httpx.get(f"http://127.0.0.1:{port}/flower/metrics", timeout=30)
    assert metrics.status_code == 200 and "flower_events_total" in metrics.text
