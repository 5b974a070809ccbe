"""The dashboard's inbox worker: decides every /ws/dashboard/ socket.

The gateway already refused non-staff (the route is staff_only) and joined the
socket to the dashboard group before asking; this worker checks staff again (a
route-table mistake must not leak business figures) and accepts with
`initial_stats` from the publisher's latest snapshot, so a thousand viewers
connecting cost no more stats computations than one.
"""

from __future__ import annotations

from redis.asyncio import Redis

from dashboard import stats
from switchboard import publish, redisconn
from switchboard.closecodes import CloseCode
from switchboard.inbox import InboxConsumer

_redis: Redis | None = None


def redis() -> Redis:
    global _redis
    if _redis is None:
        _redis = redisconn.client()
    return _redis


class DashboardInbox(InboxConsumer):
    service = "dashboard"

    async def gw_connect(self, cmd):
        conn = cmd["conn"]
        if not self.identity(cmd).is_staff:
            return await publish.reject(conn, CloseCode.FORBIDDEN)
        raw = await stats.snapshot_or_compute(redis())
        await publish.accept(conn, [stats.stats_frame("initial_stats", raw)])

    async def gw_disconnect(self, cmd):
        """Nothing to do: the gateway drops the socket from the group and presence."""
