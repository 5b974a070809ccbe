"""Two runs of one report at once, as two Celery workers do when a report is
redelivered while its first run is still alive: the program test_concurrent_runs.py
starts, once to make the database and the reports, then once per "worker".

    python -m report_worker.tests.concurrent_run setup N       -> the N report ids (JSON)
    python -m report_worker.tests.concurrent_run run DIR ID...  -> {id: celery state, ...}
    python -m report_worker.tests.concurrent_run show ID...     -> each record and its files

`run` executes the real task body (generate_report.apply, in this process) with a report
type whose builder waits, for each report, until every run has built its file (files in
DIR): the runs then store the file and finish at the same moment. Each run's file names
its process, so a test can tell whose file was kept. The database is DATABASE_URL's.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import django
import orjson

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "report_worker.settings")
django.setup()

from django.core.management import call_command  # noqa: E402

from report_worker import tasks  # noqa: E402
from report_worker.models import Report  # noqa: E402

RUNS = 2


def _built_together(barrier: Path):
    def build(params, step, identity):
        step(50, "building")
        here = barrier / params["room"]
        here.mkdir(parents=True, exist_ok=True)
        (here / str(os.getpid())).touch()
        deadline = time.monotonic() + 60
        while len(list(here.iterdir())) < RUNS:
            if time.monotonic() > deadline:
                raise RuntimeError("the other run never came")
            time.sleep(0.002)
        return f"made by {os.getpid()}\n".encode() * 1000, f"report-{os.getpid()}.csv", "text/csv"

    return build


def main(argv: list[str]) -> dict | list:
    if argv[0] == "setup":
        call_command("migrate", verbosity=0)
        ids = [
            Report.objects.create(task_id=f"race-{i}", user_id=1, kind="chat_transcript", params={"room": f"r{i}"}).pk
            for i in range(int(argv[1]))
        ]
        return ids
    if argv[0] == "run":
        tasks.BUILDERS["chat_transcript"] = _built_together(Path(argv[1]))
        states = {}
        for report_id in argv[2:]:
            result = tasks.generate_report.apply((int(report_id),))
            states[report_id] = {"state": result.state, "error": None if result.successful() else repr(result.result)}
        return states
    if argv[0] == "show":
        from report_worker.models import ReportFile

        out = {}
        for report_id in argv[1:]:
            r = Report.objects.get(pk=int(report_id))
            files = [
                {
                    "filename": getattr(f, "filename", r.filename),
                    "content_type": getattr(f, "content_type", r.content_type),
                    "data": bytes(f.data).decode(),
                }
                for f in ReportFile.objects.filter(report=r)
            ]
            out[report_id] = {
                "task_id": r.task_id,
                "status": r.status,
                "progress": r.progress,
                "filename": r.filename,
                "content_type": r.content_type,
                "files": files,
            }
        return out
    raise SystemExit(f"unknown command {argv[0]!r}")


if __name__ == "__main__":
    sys.stdout.buffer.write(orjson.dumps(main(sys.argv[1:])))
