"""`python -m django celery_worker`: the Celery worker that makes reports.

A thread pool, so killing the process (as a crash or an OOM kill would) takes every
running report with it, and acks_late brings them back; task events on for Flower.
"""

import socket

from django.core.management import BaseCommand

from switchboard import metrics


class Command(BaseCommand):
    help = "Run the report worker (Celery)."

    def handle(self, *args, **options):
        from report_worker.celery_app import app

        metrics.serve()
        app.worker_main(
            [
                "worker",
                "-P",
                "threads",
                "-c",
                "2",
                "-Q",
                "reports",
                "-E",
                "--loglevel=INFO",
                "-n",
                f"reports@{socket.gethostname()}",
                "--without-mingle",
                "--without-gossip",
            ]
        )
