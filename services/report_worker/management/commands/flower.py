"""`python -m django flower`: Flower for the report worker, under /flower/.

nginx lets only staff through (auth_request to ws-gateway). Flower's own /metrics
(under the prefix) is scraped like every other process.
"""

from django.core.management import BaseCommand

from switchboard.config import env, env_int


class Command(BaseCommand):
    help = "Run Flower for the report worker."

    def handle(self, *args, **options):
        from report_worker.celery_app import app

        app.start(
            [
                "flower",
                f"--port={env_int('FLOWER_PORT')}",
                f"--address={env('METRICS_HOST')}",
                "--url_prefix=flower",
                "--purge_offline_workers=60",
            ]
        )
