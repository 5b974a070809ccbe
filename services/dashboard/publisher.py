"""The single stats publisher: every interval, one process computes the stats and
broadcasts one stats_update to the dashboard group, whatever the number of viewers.

Every publisher process (run two or more for availability) ticks each interval and
asks for the lease (lease.py): the holder renews it, computes, stores the snapshot
for new viewers and publishes; the others only ask. If the holder dies, its lease
expires after DASHBOARD_LEASE_SECONDS and the next standby tick takes over; a clean
stop releases it for an immediate handover.

It runs as its own process (`python -m django stats_publisher`, program
`dashboard-publisher-<n>` in the launcher), not inside the inbox worker: channels'
Worker owns its event loop with no hook for background work, a slow stats source
must never delay a viewer's connect or an order, and the two scale differently
(inbox shards grow with load, publishers are replicas for availability only).
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis

from dashboard import stats
from dashboard.lease import ACQUIRED, HELD_ELSEWHERE, Lease
from switchboard import metrics, publish
from switchboard.config import env_float

log = logging.getLogger(__name__)

LEASE_KEY = "sb:dashboard:publisher"


def lease_seconds(interval: float) -> float:
    # The holder renews once per tick; a lease shorter than two ticks would lapse
    # between renewals whenever a computation runs long.
    return max(env_float("DASHBOARD_LEASE_SECONDS"), 2 * interval + 1)


class StatsPublisher:
    def __init__(self, redis: Redis, interval: float | None = None, owner: str | None = None):
        self.redis = redis
        self.interval = stats.interval() if interval is None else interval
        self.lease = Lease(redis, LEASE_KEY, lease_seconds(self.interval), owner)
        self.active = False

    async def tick(self) -> bool:
        """One interval: publish if we hold (or just got) the lease; True if we published."""
        state = await self.lease.acquire()
        if state == HELD_ELSEWHERE:
            if self.active:
                log.warning("stats publisher %s lost the lease", self.lease.owner)
                metrics.DASHBOARD_LEASE_EVENTS.labels("lost").inc()
            self._set_active(False)
            return False
        if state == ACQUIRED:
            log.info("stats publisher %s holds the lease", self.lease.owner)
            metrics.DASHBOARD_LEASE_EVENTS.labels("acquired").inc()
        self._set_active(True)
        renewed = time.monotonic()
        raw = await stats.compute_and_store(self.redis, "interval")
        if time.monotonic() - renewed > self.lease.ttl_ms / 1000:
            # We were frozen past our lease: a standby may hold it and publish now.
            # Skip this one rather than risk two publishers; the next tick asks again.
            log.warning("stats publisher %s: computation outlived the lease; not published", self.lease.owner)
            return False
        await publish.send_to_group(stats.group(), stats.stats_frame("stats_update", raw))
        return True

    def _set_active(self, active: bool) -> None:
        self.active = active
        metrics.DASHBOARD_PUBLISHER_ACTIVE.set(1 if active else 0)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every interval until `stop`; then hand the lease over."""
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    # A tick stuck on a hung connection must not outlive the lease unnoticed.
                    await asyncio.wait_for(self.tick(), self.lease.ttl_ms / 1000)
                except TimeoutError:
                    # Slow sources or a hung connection (seen on a loaded machine while
                    # PostgreSQL restarted): an operational condition, one line.
                    log.warning("stats publisher tick outlived its lease (%.1f s): skipped", self.lease.ttl_ms / 1000)
                except Exception:
                    # Redis away or a bug: keep ticking; the lease expires by itself if
                    # we cannot renew it, and a standby with a working path takes over.
                    log.exception("stats publisher tick failed")
                delay = max(0.05, self.interval - (time.monotonic() - started))
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
        finally:
            if self.active:
                try:
                    if await self.lease.release():
                        metrics.DASHBOARD_LEASE_EVENTS.labels("released").inc()
                except Exception:
                    log.warning("stats publisher could not release its lease; it expires by itself")
            self._set_active(False)
