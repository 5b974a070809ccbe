"""The report worker's Celery app: Redis broker, settings for long tasks that must
survive a worker crash.

* task_acks_late + task_reject_on_worker_lost: a task is acknowledged when it ends; a
  worker killed mid-task (SIGKILL, OOM) leaves it unacknowledged, so the broker gives it
  to a worker again after the visibility timeout (CELERY_VISIBILITY_TIMEOUT_SECONDS),
  found by a sweep every tenth of that timeout.
* worker_prefetch_multiplier=1: a worker holds no more reports than it runs, so a
  crash delays only those.
* Task events on (worker_send_task_events, task_send_sent_event): Flower shows them.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "report_worker.settings")

from celery import Celery  # noqa: E402

from switchboard import redisconn  # noqa: E402
from switchboard.config import env_int  # noqa: E402

VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS")

# REDIS_URL, or the Sentinel-managed master (redisconn: kombu's sentinel:// URLs).
broker_url, broker_options = redisconn.celery_broker()
app = Celery("report_worker", set_as_current=True)
app.conf.update(
    broker_url=broker_url,
    broker_transport_options={
        **broker_options,
        "visibility_timeout": VISIBILITY_TIMEOUT,
        # kombu sweeps the unacknowledged tasks every interval x throttle seconds
        # (10 x 10 by default): a task whose worker was killed came back 100 s later
        # whatever the visibility timeout. Sweep every tenth of the timeout (1..10 s),
        # each sweep a real one (one ZRANGE under a Redis lock).
        "unacked_restore_interval": max(1, min(10, VISIBILITY_TIMEOUT // 10)),
        "unacked_restore_throttle": 1,
    },
    broker_connection_retry_on_startup=True,
    # Progress and results live in the Report record and on /ws/tasks/, not in Celery.
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_send_task_events=True,
    task_send_sent_event=True,
    task_serializer="json",
    accept_content=["json"],
    task_default_queue="reports",
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks(["report_worker"])
