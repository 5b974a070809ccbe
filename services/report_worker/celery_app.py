"""The Celery app of the report worker: Redis broker, and delivery that survives a
killed worker.

acks_late + reject_on_worker_lost: a task is acknowledged only once it has finished,
so a worker that dies mid-task leaves it to be delivered again; on Redis that happens
after the broker's visibility timeout (REPORT_VISIBILITY_TIMEOUT_SECONDS, which must
stay above the longest report, or a slow report would run twice). Prefetch 1: a long
report does not hold others hostage in one worker's buffer. Task events on, for Flower.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "report_worker.settings")

import django  # noqa: E402

django.setup()

from celery import Celery  # noqa: E402

from switchboard.config import env, env_int  # noqa: E402

VISIBILITY_TIMEOUT = env_int("REPORT_VISIBILITY_TIMEOUT_SECONDS")

app = Celery("report_worker")
app.conf.update(
    broker_url=env("REDIS_URL"),
    result_backend=None,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT,
        # kombu sweeps for abandoned tasks every interval x throttle seconds (100 s by
        # default); sweep every few seconds, scanning each time, so a task comes back
        # soon after its visibility timeout.
        "unacked_restore_interval": max(1, min(10, VISIBILITY_TIMEOUT // 4)),
        "unacked_restore_throttle": 1,
    },
    broker_connection_retry_on_startup=True,
    worker_send_task_events=True,
    task_send_sent_event=True,
    task_track_started=True,
    task_default_queue="reports",
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks(["report_worker"], related_name="tasks")
