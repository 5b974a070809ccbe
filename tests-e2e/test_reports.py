"""Reports end to end: requested over HTTP, progress on /ws/tasks/, a file only its
owner downloads, a notification at the end, and a killed Celery worker that does not
lose the report."""

from __future__ import annotations

import csv
import io
import os
import signal
import time

import httpx
import pytest
from wsclient import Client


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def request(fleet, token, body):
    return httpx.post(f"{fleet.url}/api/reports/", headers=auth(token), json=body)


async def updates_until_done(client: Client, task_id: str, timeout: float = 60) -> list[dict]:
    got = []
    while True:
        update = await client.next_of("task_update", timeout=timeout, task_id=task_id)
        got.append(update)
        if update["status"] in ("completed", "failed"):
            return got


async def test_chat_transcript_streams_progress_and_downloads_for_its_owner_only(fleet, tokens):
    room = "lobby"
    chat = await Client.connect(f"{fleet.ws_url}/ws/chat/{room}/", tokens["alice"])
    await chat.next_of("history")
    await chat.send({"type": "chat_message", "message": "in the transcript, with, commas"})
    await chat.next_of("chat_message", message="in the transcript, with, commas")
    await chat.close()

    tasks = await Client.connect(f"{fleet.ws_url}/ws/tasks/", tokens["alice"])
    res = request(fleet, tokens["alice"], {"type": "chat_transcript", "room": room})
    assert res.status_code == 202, res.text
    task_id = res.json()["task_id"]
    updates = await updates_until_done(tasks, task_id)
    statuses = [u["status"] for u in updates]
    assert statuses[0] == "started" and statuses[-1] == "completed"
    assert statuses.count("progress") >= 3
    assert [u["progress"] for u in updates] == sorted(u["progress"] for u in updates)
    assert updates[-1]["progress"] == 100
    assert set(updates[-1]) == {"type", "task_id", "status", "progress", "message", "result", "timestamp"}

    url = updates[-1]["result"]["url"]
    own = httpx.get(fleet.url + url, headers=auth(tokens["alice"]))
    assert own.status_code == 200 and own.headers["content-type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(own.text)))
    assert rows[0] == ["seq", "timestamp", "user", "message"]
    assert ["alice", "in the transcript, with, commas"] in [r[2:] for r in rows[1:]]
    assert httpx.get(fleet.url + url, headers=auth(tokens["bob"])).status_code == 404
    assert httpx.get(fleet.url + url).status_code == 401
    status = httpx.get(f"{fleet.url}/api/reports/{task_id}/", headers=auth(tokens["alice"])).json()
    assert status["status"] == "completed" and status["result"]["url"] == url

    titles = [
        n["title"]
        for n in httpx.get(f"{fleet.url}/api/notifications/", headers=auth(tokens["alice"])).json()["notifications"]
    ]
    assert "Report ready" in titles
    await tasks.close()


async def test_bob_sees_none_of_alices_task_updates(fleet, tokens):
    bob = await Client.connect(f"{fleet.ws_url}/ws/tasks/", tokens["bob"])
    alice = await Client.connect(f"{fleet.ws_url}/ws/tasks/", tokens["alice"])
    task_id = request(fleet, tokens["alice"], {"type": "chat_transcript", "room": "lobby"}).json()["task_id"]
    await updates_until_done(alice, task_id)
    assert [f for f in await bob.drain(0.5) if f["type"] == "task_update"] == []
    await alice.close()
    await bob.close()


async def test_orders_summary_is_a_pdf(fleet, tokens):
    assert (
        httpx.post(f"{fleet.url}/api/orders/", headers=auth(tokens["bob"]), json={"total": "12.50"}).status_code == 201
    )
    tasks = await Client.connect(f"{fleet.ws_url}/ws/tasks/", tokens["admin"])
    task_id = request(fleet, tokens["admin"], {"type": "orders_summary"}).json()["task_id"]
    done = (await updates_until_done(tasks, task_id))[-1]
    assert done["status"] == "completed", done
    pdf = httpx.get(fleet.url + done["result"]["url"], headers=auth(tokens["admin"]))
    assert pdf.content.startswith(b"%PDF")
    await tasks.close()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"type": "nope"}, "unknown_type"),
        ({"type": "chat_transcript"}, "invalid_body"),
        ({"type": "chat_transcript", "room": "../etc"}, "invalid_body"),
        ({}, "unknown_type"),
    ],
)
def test_bad_requests_are_400_with_a_message(fleet, tokens, body, code):
    res = request(fleet, tokens["alice"], body)
    assert res.status_code == 400 and res.json()["error"] == code and res.json()["message"]


async def test_a_report_on_a_missing_room_fails_with_a_clear_message(fleet, tokens):
    tasks = await Client.connect(f"{fleet.ws_url}/ws/tasks/", tokens["alice"])
    task_id = request(fleet, tokens["alice"], {"type": "chat_transcript", "room": "no-such-room"}).json()["task_id"]
    done = (await updates_until_done(tasks, task_id))[-1]
    assert done["status"] == "failed" and "no-such-room" in done["message"]
    await tasks.close()


async def test_a_killed_worker_does_not_lose_the_report(fleet, tokens):
    tasks = await Client.connect(f"{fleet.ws_url}/ws/tasks/", tokens["alice"])
    task_id = request(fleet, tokens["alice"], {"type": "chat_transcript", "room": "lobby"}).json()["task_id"]
    await tasks.next_of("task_update", timeout=30, task_id=task_id, status="progress")
    os.killpg(fleet.pid("report-worker-celery-0"), signal.SIGKILL)  # the worker and its pool
    # supervisord restarts it; the broker hands the unacknowledged task out again
    # after REPORT_VISIBILITY_TIMEOUT_SECONDS (short in the e2e fleet).
    done = (await updates_until_done(tasks, task_id, timeout=90))[-1]
    assert done["status"] == "completed"
    assert httpx.get(fleet.url + done["result"]["url"], headers=auth(tokens["alice"])).status_code == 200
    assert (
        httpx.get(f"{fleet.url}/api/reports/{task_id}/", headers=auth(tokens["alice"])).json()["status"] == "completed"
    )
    await tasks.close()
    time.sleep(0)


def test_flower_is_for_staff_only(fleet, tokens):
    assert httpx.get(f"{fleet.url}/flower/", headers=auth(tokens["admin"])).status_code == 200
    assert httpx.get(f"{fleet.url}/flower/", headers=auth(tokens["alice"])).status_code == 403
    assert httpx.get(f"{fleet.url}/flower/").status_code == 401
