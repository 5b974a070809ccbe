"""`python -m django flower`: Flower for the report worker, with task events on, under
/flower/ (nginx lets only staff through) on FLOWER_PORT. Its own /flower/metrics is
what Prometheus scrapes for Celery task states, on the port directly.
"""

from __future__ import annotations

from django.core.management import BaseCommand

from switchboard.config import env, env_int


class Command(BaseCommand):
    help = "Run Flower for the report worker."

    def handle(self, *args, **options):
        import os

        from report_worker.celery_app import app

        # Flower refuses its JSON API without its own auth; ours is nginx's staff check
        # in front, and the port itself is reachable only from the host (METRICS_HOST).
        os.environ.setdefault("FLOWER_UNAUTHENTICATED_API", "true")

        app.start(
            [
                "flower",
                f"--port={env_int('FLOWER_PORT')}",
                f"--address={env('METRICS_HOST')}",
                "--url_prefix=flower",
                # Auth is nginx's auth_request against ws-gateway; Flower trusts its proxy.
                "--enable_events",
                "--persistent=False",
                "--purge_offline_workers=60",
            ]
        )
