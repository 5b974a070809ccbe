"""The server API's task progress (POST /api/reports/task-updates/): the shop's own task,
stored as its user's record before each task_update frame, so a client that connects
late reads the last state from GET /api/reports/<task_id>/."""

import pytest

from report_worker.models import Report
from switchboard import apikeys, tokens
from switchboard.testing import make_api_key

pytestmark = [pytest.mark.usefixtures("channel_layers"), pytest.mark.django_db]
URL = "/api/reports/task-updates/"


@pytest.fixture
def key(redis_url):
    yield make_api_key("tasks")
    apikeys.reset()


def update(client, key, **body):
    return client.post(
        URL, {"user_id": 7, "task_id": "export-1", **body}, content_type="application/json", HTTP_AUTHORIZATION=key
    )


def as_user(user_id):
    return {"HTTP_AUTHORIZATION": "Bearer " + tokens.issue(tokens.Identity(user_id, f"u{user_id}"))}


def test_the_last_state_is_readable_by_its_user_only(client, key):
    assert update(client, key, status="started").status_code == 200
    res = update(client, key, status="progress", progress=40, message="40 of 100 rows")
    assert res.status_code == 200 and res.json()["progress"] == 40
    late = client.get("/api/reports/export-1/", **as_user(7)).json()
    assert (late["type"], late["status"], late["progress"], late["message"]) == (
        "shop",
        "progress",
        40,
        "40 of 100 rows",
    )
    assert client.get("/api/reports/export-1/", **as_user(8)).status_code == 404
    assert client.get("/api/reports/export-1/download/", **as_user(7)).status_code == 404


def test_a_finished_task_keeps_its_final_state(client, key):
    done = update(client, key, status="completed", progress=100, result={"url": "https://shop.example/e.csv"})
    assert done.status_code == 200 and done.json()["result"] == {"url": "https://shop.example/e.csv"}
    again = update(client, key, status="completed", progress=100, result={"url": "https://shop.example/e.csv"})
    assert again.status_code == 200  # a retry of the final state
    assert update(client, key, status="progress", progress=50).status_code == 409
    assert Report.objects.get(task_id="export-1").status == "completed"


def test_another_users_task_id_is_409(client, key):
    assert update(client, key, status="started").status_code == 200
    res = client.post(
        URL,
        {"user_id": 8, "task_id": "export-1", "status": "started"},
        content_type="application/json",
        HTTP_AUTHORIZATION=key,
    )
    assert res.status_code == 409


def test_shop_tasks_are_not_counted_as_reports(client, key):
    update(client, key, status="progress", progress=10)
    staff = {"HTTP_AUTHORIZATION": "Bearer " + tokens.issue(tokens.Identity(3, "admin", True))}
    assert client.get("/api/reports/stats/", **staff).json()["running"] == 0


@pytest.mark.parametrize(
    "body", [{"status": "nearly"}, {"status": "progress", "progress": 101}, {"status": "started", "task_id": "a b"}]
)
def test_bad_updates_are_400(client, key, body):
    assert update(client, key, **body).status_code == 400


def test_a_shop_user_when_the_user_directory_does_not_answer_is_502(client, key, directory_down):
    res = client.post(
        URL,
        {"sub": "shop-7", "task_id": "export-1", "status": "started"},
        content_type="application/json",
        HTTP_AUTHORIZATION=key,
    )
    assert res.status_code == 502
    assert res.json()["error"] == "upstream_error" and "could not resolve the user" in res.json()["message"]
    assert not Report.objects.exists()
