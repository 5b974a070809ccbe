"""`python -m django inbox`: run this service's inbox worker on its shards.

The service's settings name the consumer (INBOX_CONSUMER) and inbox (INBOX_NAME);
`--shards 0,2` runs a subset, so shards can be spread over processes. Starts the
process's metrics exporter first.
"""

from __future__ import annotations

import logging

from channels.layers import get_channel_layer
from channels.worker import Worker
from django.conf import settings
from django.core.management import BaseCommand
from django.db import connections
from django.utils.module_loading import import_string

from switchboard import metrics
from switchboard.routes import inbox_channels

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the service's inbox worker."

    def add_arguments(self, parser):
        parser.add_argument("--shards", default="", help="Comma-separated shard numbers (default: all).")

    def handle(self, *args, shards="", **options):
        channels = inbox_channels(settings.INBOX_NAME)
        if shards:
            wanted = {int(s) for s in shards.split(",")}
            channels = [c for c in channels if int(c.rsplit(".", 1)[1]) in wanted]
        metrics.serve()
        # Every database call of a worker runs on its one sync thread (asgiref), so one
        # long-lived connection serves them all; with CONN_MAX_AGE=0 each command would
        # reconnect (and rerun the init PRAGMAs), a fifth of its time in the bench profile.
        for conn in connections.all():
            conn.settings_dict["CONN_MAX_AGE"] = None
        consumer = import_string(settings.INBOX_CONSUMER)
        log.info("%s inbox worker on %s", settings.INBOX_NAME, ", ".join(channels))
        Worker(application=consumer.as_asgi(), channels=channels, channel_layer=get_channel_layer("inbox")).run()
