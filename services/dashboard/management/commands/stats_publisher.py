"""`python -m django stats_publisher`: run one stats publisher process (publisher.py).

Start two or more for availability; the lease makes exactly one of them publish.
SIGTERM/SIGINT stop it cleanly and release the lease, so a deploy hands over at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from django.core.management import BaseCommand

from dashboard.publisher import StatsPublisher
from switchboard import metrics, redisconn

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the dashboard's stats publisher (one active per fleet, by lease)."

    def handle(self, *args, **options):
        metrics.serve()
        asyncio.run(self.main())

    async def main(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        # Timeouts, so a Redis that hangs fails a tick instead of freezing the process.
        redis = redisconn.client(socket_timeout=5, socket_connect_timeout=5)
        publisher = StatsPublisher(redis)
        log.info("stats publisher %s: every %ss", publisher.lease.owner, publisher.interval)
        try:
            await publisher.run(stop)
        finally:
            await redis.aclose()
