"""Two runs of one report at once (a redelivery while the first run is still alive, as
Celery does after the visibility timeout): both end well, the report is completed once,
with one whole file, one "completed" frame and one notification; on SQLite and on
PostgreSQL, in separate processes, each with its own connection (concurrent_run.py).

Before the store was idempotent, the runs' update_or_create of one ReportFile raced: one
run failed (IntegrityError/DoesNotExist or SQLite's "database is locked") and marked the
report failed, as the Celery-kill fault row saw under CI load.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import orjson
import pytest
from channels.layers import get_channel_layer

from switchboard.routes import shard_channel

pytestmark = pytest.mark.usefixtures("channel_layers")

SERVICES = Path(__file__).resolve().parents[2]
REPORTS = 4  # each one raced by both runs


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'report_worker.sqlite3'}"
    return request.getfixturevalue("postgres").create_db(f"reports_{os.getpid()}_{tmp_path.name[-12:]}".lower())


def program(database_url, redis_url, *args) -> list[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REPORT_STEP_SECONDS": "0",
        "DJANGO_SETTINGS_MODULE": "report_worker.settings",
        "PYTHONPATH": os.pathsep.join([str(SERVICES), os.environ.get("PYTHONPATH", "")]),
    }
    return [sys.executable, "-m", "report_worker.tests.concurrent_run", *args], env


async def run(database_url, redis_url, *args) -> tuple[object, str]:
    cmd, env = program(database_url, redis_url, *args)
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    return orjson.loads(out), err.decode()


async def drain(layer, channel) -> list[dict]:
    got = []
    while True:
        try:
            got.append(await asyncio.wait_for(layer.receive(channel), 1))
        except TimeoutError:
            return got


async def test_two_runs_of_one_report_at_once_complete_it_once(database_url, redis_url, tmp_path):
    ids, _ = await run(database_url, redis_url, "setup", str(REPORTS))
    layer = get_channel_layer()
    tab = await layer.new_channel()
    await layer.group_add("tasks.user.1", tab)
    ids = [str(i) for i in ids]
    runs = await asyncio.gather(*(run(database_url, redis_url, "run", str(tmp_path / "barrier"), *ids) for _ in "ab"))

    for states, log in runs:
        # Each run ends well: the second one to finish finds the report done.
        assert states == {i: {"state": "SUCCESS", "error": None} for i in ids}, log
        assert "Traceback" not in log, log
    shown, _ = await run(database_url, redis_url, "show", *ids)
    for i in ids:
        record = shown[i]
        assert (record["status"], record["progress"]) == ("completed", 100), record
        # One file, whole, and the record names that file (not the other run's).
        assert len(record["files"]) == 1, record
        (stored,) = record["files"]
        maker = stored["filename"].removeprefix("report-").removesuffix(".csv")
        assert stored["data"] == f"made by {maker}\n" * 1000
        assert (record["filename"], record["content_type"]) == (stored["filename"], "text/csv")

    frames = [orjson.loads(m["text"]) for m in await drain(layer, tab)]
    for i in ids:
        done = [f for f in frames if f["task_id"] == shown[i]["task_id"] and f["status"] == "completed"]
        assert len(done) == 1, done  # a socket is told once that the report is ready
    notices = await drain(get_channel_layer("inbox"), shard_channel("notification", "1"))
    ready = [n for n in notices if n["title"].startswith("Report ready")]
    assert len(ready) == REPORTS, ready  # one notification per report, not one per run
