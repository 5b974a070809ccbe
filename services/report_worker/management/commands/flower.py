"""`python -m django flower`: Flower for the report worker, with task events on, under
/flower/ on FLOWER_PORT. Its own /flower/metrics is what Prometheus scrapes for Celery
task states, on the port directly.

Who may reach /flower/: staff. Behind nginx (make run) and ingress-nginx (k8s) the
proxy asks ws-gateway (auth_request) and Flower trusts it, so only the proxy and
Prometheus may connect to this port (fleet.py: proxy_only; compose networks, a k8s
NetworkPolicy). nginx-proxy (compose) cannot make that check, so there Flower asks for
FLOWER_BASIC_AUTH itself, which compose requires. Its /flower/healthcheck and
/flower/metrics need no login: every proxy refuses them (routes.toml: internal), and
the probes and Prometheus read them on this port.
"""

from __future__ import annotations

from django.core.management import BaseCommand

from switchboard.config import env, env_int


class Command(BaseCommand):
    help = "Run Flower for the report worker."

    def handle(self, *args, **options):
        import os

        from report_worker.celery_app import app

        # Flower reads FLOWER_BASIC_AUTH from the environment itself (its FLOWER_<option>
        # convention): not passed in argv, where `ps` would show it.
        if not env("FLOWER_BASIC_AUTH"):
            # Flower refuses its JSON API without its own auth; ours is then the proxy's
            # staff check in front, and the port is reachable only from the host (METRICS_HOST).
            os.environ.setdefault("FLOWER_UNAUTHENTICATED_API", "true")

        app.start(
            [
                "flower",
                f"--port={env_int('FLOWER_PORT')}",
                f"--address={env('METRICS_HOST')}",
                "--url_prefix=flower",
                "--enable_events",
                "--persistent=False",
                # tornado sets the root logger's level from this (its default: info).
                f"--logging={env('LOG_LEVEL').lower()}",
                "--purge_offline_workers=60",
            ]
        )
