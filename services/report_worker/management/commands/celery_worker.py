"""`python -m django celery_worker`: the report worker's Celery worker, with this
process's metrics exporter (report counters, /healthz) on METRICS_PORT.

It runs the threads pool: tasks run inside this one process, so its metrics count them,
and a kill of the process stops its tasks too (with prefork, children orphaned by a
SIGKILL of the parent would go on running). The unacknowledged tasks come back after
the broker's visibility timeout (acks_late).
"""

from __future__ import annotations

from django.core.management import BaseCommand

from switchboard import metrics
from switchboard.config import env, env_int


class Command(BaseCommand):
    help = "Run the report worker's Celery worker."

    def handle(self, *args, **options):
        from report_worker.celery_app import app

        metrics.serve()
        app.worker_main(
            [
                "worker",
                f"--loglevel={env('LOG_LEVEL')}",
                "--pool=threads",
                f"--concurrency={env_int('CELERY_CONCURRENCY')}",
                "--queues=reports",
                "--without-gossip",
                "--without-mingle",
                "--events",
            ]
        )
