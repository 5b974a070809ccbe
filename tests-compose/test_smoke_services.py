"""Smoke suite, continued: notifications and reports when the fleet has them
(parametrized by SERVICES), through the gateway on 127.0.0.1 only."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from wsclient import Client

from launcher import SERVICES

NAMES = {s.name for s in SERVICES}


def auth(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


def notify(stack, tokens, title: str) -> int:
    res = httpx.post(
        f"{stack.url}/api/notifications/",
        headers=auth(tokens["admin"]),
        json={"user": "alice", "title": title, "message": "m", "url": "/x/"},
        timeout=15,
    )
    assert res.status_code == 201, res.text
    return res.json()["id"]


@pytest.mark.skipif("notification" not in NAMES, reason="no notification service in SERVICES")
@pytest.mark.timeout(240)
async def test_a_notification_reaches_its_user_also_across_a_restart_of_the_service(stack, tokens):
    tab = await Client.connect(f"{stack.ws_url}/ws/notifications/", tokens["alice"])
    await tab.next_of("unread_count", timeout=15)
    first = notify(stack, tokens, "before")
    await tab.next_of("notification", id=first, timeout=15)
    # As `docker-compose restart chat` in test_smoke: the HTTP face and the worker.
    await asyncio.to_thread(stack.compose, "restart", "notification", "notification-inbox")
    stack.wait_healthy("notification")
    stack.wait_healthy("notification-inbox")
    second = notify(stack, tokens, "after")
    await tab.next_of("notification", id=second, timeout=30)
    assert tab.ws.close_code is None, "the restart dropped the socket"
    await tab.close()


@pytest.mark.skipif("report-worker" not in NAMES, reason="no report-worker service in SERVICES")
@pytest.mark.timeout(240)
async def test_a_report_streams_its_progress_and_its_owner_downloads_it(stack, tokens):
    tasks = await Client.connect(f"{stack.ws_url}/ws/tasks/", tokens["alice"])
    res = httpx.post(
        f"{stack.url}/api/reports/",
        headers=auth(tokens["alice"]),
        json={"type": "chat_transcript", "room": "lobby"},
        timeout=15,
    )
    assert res.status_code == 202, res.text
    task_id = res.json()["task_id"]
    statuses = []
    while not statuses or statuses[-1] not in ("completed", "failed"):
        update = await tasks.next_of("task_update", timeout=90, task_id=task_id)
        statuses.append(update["status"])
    assert statuses[0] == "started" and statuses[-1] == "completed", statuses
    assert "progress" in statuses
    # Written by the Celery worker's container, served by the HTTP face's: a shared volume.
    own = httpx.get(stack.url + update["result"]["url"], headers=auth(tokens["alice"]), timeout=15)
    assert own.status_code == 200, own.text
    other = httpx.get(stack.url + update["result"]["url"], headers=auth(tokens["bob"]), timeout=15)
    assert other.status_code in (403, 404)
    await tasks.close()
