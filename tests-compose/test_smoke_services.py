"""Smoke suite, continued: notifications, reports and Flower when the fleet has them
(parametrized by SERVICES), through the gateway on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import os

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
    await asyncio.to_thread(stack.compose, "restart", "notification-http", "notification-inbox")
    stack.wait_healthy("notification-http")
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
    # Made by the Celery worker's container, served by the HTTP face's from the database.
    own = httpx.get(stack.url + update["result"]["url"], headers=auth(tokens["alice"]), timeout=15)
    assert own.status_code == 200, own.text
    other = httpx.get(stack.url + update["result"]["url"], headers=auth(tokens["bob"]), timeout=15)
    assert other.status_code in (403, 404)
    await tasks.close()


@pytest.mark.skipif("report-worker" not in NAMES, reason="no report-worker service in SERVICES")
@pytest.mark.timeout(120)
async def test_flower_asks_for_its_credentials_and_shows_the_celery_worker(stack, tokens):
    """nginx-proxy routes /flower/ (VIRTUAL_PATH) without the staff check it cannot make:
    Flower's own basic auth (FLOWER_BASIC_AUTH from .env) keeps it for staff."""
    user, _, password = os.environ["SB_FLOWER_AUTH"].partition(":")
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
        bare = await http.get("/flower/")
        assert bare.status_code == 401 and bare.headers["www-authenticate"].startswith("Basic")
        assert (await http.get("/flower/", auth=(user, "wrong"))).status_code == 401
        # A staff member's session token is not Flower's credential.
        assert (await http.get("/flower/", headers=auth(tokens["admin"]))).status_code == 401
        assert (await http.get("/flower/api/workers")).status_code == 401
        page = await http.get("/flower/", auth=(user, password), follow_redirects=True)
        assert page.status_code == 200 and "Flower" in page.text
        # The Celery worker, by its container's host name. Flower asks the workers
        # (remote control): a worker still starting answers on a later try.
        worker = stack.containers("report-worker-celery")[0]
        hostname = stack.docker("inspect", "--format", "{{.Config.Hostname}}", worker).strip()
        workers: dict = {}
        for _ in range(30):
            res = await http.get("/flower/api/workers", params={"refresh": 1}, auth=(user, password))
            assert res.status_code == 200, res.text
            workers = res.json()
            if workers:
                break
            await asyncio.sleep(1)
        print(f"\nFlower sees workers: {sorted(workers)}")
        assert any(name.endswith(f"@{hostname}") for name in workers), (hostname, sorted(workers))
        # Its metrics are Prometheus', on its port: the gateway refuses them from outside.
        assert (await http.get("/flower/metrics", auth=(user, password))).status_code == 404
    # No app container reaches Flower's port directly: it is on networks of its own, with
    # the proxy and Prometheus on one, Redis on the other (deploy/composegen.py).
    probe = "import socket; socket.create_connection(('report-worker-flower', 8000), 3); print('reached')"
    out = stack.docker("exec", stack.containers("report-worker-http")[0], "python", "-c", probe, check=False)
    assert "reached" not in out
