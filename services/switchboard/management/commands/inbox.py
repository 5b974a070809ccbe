"""`python -m django inbox`: run this service's inbox worker, as one of any number of replicas.

The service's settings name the consumer (INBOX_CONSUMER) and inbox (INBOX_NAME). The
worker joins the inbox's owners in Redis and consumes the shards it is given, one
command (or one batch of the consumer's `batch_types`) at a time per key, fenced (switchboard.ownership; docs/operations.md, "Shard
ownership"). Starts the process's metrics exporter first: /healthz reports the
ownership loop's liveness, /handled the worker's record of what it handled.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management import BaseCommand
from django.db import connections
from django.utils.module_loading import import_string

from switchboard import metrics, ownership, redisconn
from switchboard.config import env_int

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the service's inbox worker (one of its replicas)."

    def handle(self, *args, **options):
        metrics.serve()
        # Every database call of a worker runs on its one sync thread (asgiref), so one
        # long-lived connection serves them all; with CONN_MAX_AGE=0 each command would
        # reconnect (and rerun the init PRAGMAs), a fifth of its time in the bench profile.
        for conn in connections.all():
            conn.settings_dict["CONN_MAX_AGE"] = None
        asyncio.run(self.run())

    async def run(self) -> None:
        consumer = import_string(settings.INBOX_CONSUMER)
        owner = ownership.Owner(
            settings.INBOX_NAME,
            env_int("INBOX_SHARDS"),
            consumer.as_asgi(),
            get_channel_layer("inbox"),
            redisconn.client(),
            raise_db_fence=database_sync_to_async(ownership.raise_db_fence),
            batch_types=consumer.batch_types,
        )
        metrics.liveness = owner.healthy
        metrics.pages["/handled"] = ownership.records_jsonl
        log.info("%s inbox worker %s joining the owners of %d shards", settings.INBOX_NAME, owner.member, owner.shards)
        task = asyncio.ensure_future(owner.run())
        loop = asyncio.get_running_loop()
        # SIGTERM (k8s, supervisord, compose stop): hand the shards over at once.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            log.info("%s inbox worker %s stopped; shards handed over", settings.INBOX_NAME, owner.member)
