"""The dashboard's stats: computed once for every viewer, never per socket.

Sources, each fetched concurrently with a short timeout, each allowed to fail alone
(its figure becomes null and `unavailable` names it, so a viewer never mistakes
"unknown" for zero):

* presence (Redis, written by every ws-gateway process): distinct users online now
  and connections by route; a dead process's sockets expire by themselves;
* ws-gateway `GET /api/auth/stats/`: total users;
* report-worker `GET /api/reports/stats/`: report tasks running (a 404 or an
  unreachable service counts as 0, and `reports_available` says so);
* chat `GET /api/chat/rooms/`: the sum of every room's last seq is a counter of all
  messages ever stored, sampled per minute in Redis to give messages per minute,
  without the dashboard reading chat's database;
* the dashboard's own database: today's orders and revenue, orders per minute.

The latest result is kept in Redis (SNAPSHOT_KEY) for a few intervals, so a viewer
who connects gets `initial_stats` from it instead of causing a computation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from channels.db import database_sync_to_async
from redis.asyncio import Redis

from dashboard import store
from switchboard import metrics, routes, tokens
from switchboard.config import env_float
from switchboard.presence import ALL, Presence, route_topic
from switchboard.protocol import raw_frame

log = logging.getLogger(__name__)

SNAPSHOT_KEY = "sb:dashboard:stats"
CHAT_TOTALS_KEY = "sb:dashboard:chat-totals"  # hash: minute (epoch // 60) -> messages ever, last sample
# A slow source must not hold up the figures of the others, nor the next tick.
SOURCE_TIMEOUT_SECONDS = 2.0


def interval() -> float:
    return env_float("DASHBOARD_STATS_INTERVAL_SECONDS")


def snapshot_ttl_ms() -> int:
    # Three intervals: long enough to bridge a lease handover, short enough that a
    # fleet without a publisher shows fresh figures to new viewers, not stale ones.
    return int(max(3 * interval(), 1) * 1000)


def group() -> str:
    """The viewers' group, from the route table (the gateway joins the same one)."""
    return next(r for r in routes.load().websocket if r.name == "dashboard").group


def stats_frame(kind: str, raw: bytes) -> str:
    """initial_stats / stats_update around the stats JSON, which is encoded once."""
    return raw_frame(kind, "data", raw)


class _Unavailable(Exception):
    pass


async def _get_json(client: httpx.AsyncClient, path: str) -> dict:
    res = await client.get(routes.internal_url(path))
    if res.status_code == 404:
        raise FileNotFoundError(path)
    res.raise_for_status()
    return res.json()


async def _source(name: str, coro, missing_ok: bool = False):
    """The source's value; None for a service not deployed (404) when `missing_ok`;
    else _Unavailable, counted and logged."""
    try:
        return await asyncio.wait_for(coro, SOURCE_TIMEOUT_SECONDS)
    except FileNotFoundError:
        if missing_ok:
            return None
        exc_name = "404"
    except Exception as exc:
        exc_name = type(exc).__name__
    metrics.DASHBOARD_SOURCE_ERRORS.labels(name).inc()
    log.warning("dashboard stats: source %s failed: %s", name, exc_name)
    raise _Unavailable(name)


async def _presence_figures(redis: Redis) -> dict:
    presence = Presence(redis)
    members = await presence.members(ALL)
    names = [r.name for r in routes.load().websocket]
    counts = await asyncio.gather(*(presence.count_connections(route_topic(n)) for n in names))
    return {
        "online_users": len({m.user_id for m in members}),
        "connections": len(members),
        "connections_by_route": dict(zip(names, counts, strict=True)),
    }


async def _messages_per_minute(
    redis: Redis, total: int | None, first_minute: datetime, minutes: int, now_minute: int | None = None
) -> list:
    """Messages stored per minute, from samples of chat's all-time message counter.

    A minute's figure is its last sample minus the previous minute's last sample; a
    minute without both samples is null (unknown), never a made-up zero.
    """
    now_minute = int(time.time() // 60) if now_minute is None else now_minute
    if total is not None:
        await redis.hset(CHAT_TOTALS_KEY, str(now_minute), total)
    raw = await redis.hgetall(CHAT_TOTALS_KEY)
    samples = {int(k): int(v) for k, v in raw.items()}
    stale = [str(k) for k in samples if k < now_minute - 2 * minutes]
    if stale:
        await redis.hdel(CHAT_TOTALS_KEY, *stale)
    first = int(first_minute.timestamp() // 60)
    series = []
    for m in range(first, first + minutes):
        if m in samples and m - 1 in samples:
            series.append(max(0, samples[m] - samples[m - 1]))
        else:
            series.append(None)
    return series


def _failed(result) -> bool:
    return isinstance(result, BaseException)


async def compute(redis: Redis, trigger: str) -> dict:
    """Every figure of the dashboard, once; counted by trigger ("interval" or "connect")."""
    metrics.DASHBOARD_STATS_COMPUTATIONS.labels(trigger).inc()
    with metrics.timer(metrics.DASHBOARD_STATS_SECONDS):
        headers = {"Authorization": "Bearer " + tokens.service_token("dashboard", ttl=60)}
        async with httpx.AsyncClient(headers=headers, timeout=SOURCE_TIMEOUT_SECONDS) as client:
            results = await asyncio.gather(
                _source("presence", _presence_figures(redis)),
                _source("auth", _get_json(client, "/api/auth/stats/")),
                _source("reports", _get_json(client, "/api/reports/stats/"), missing_ok=True),
                _source("chat", _get_json(client, "/api/chat/rooms/"), missing_ok=True),
                _source("orders", database_sync_to_async(store.order_figures)()),
                return_exceptions=True,
            )
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, _Unavailable):
                log.error("dashboard stats: unexpected failure", exc_info=r)
        unavailable = sorted({r.args[0] if isinstance(r, _Unavailable) else "unknown" for r in results if _failed(r)})
        presence, auth, reports, chat, orders = (None if _failed(r) else r for r in results)
        now = datetime.now(UTC)
        minutes = store.SERIES_MINUTES
        first_minute = orders["first_minute"] if orders else store.minute_floor(now) - timedelta(minutes=minutes - 1)
        chat_total = sum(int(r.get("last_seq", 0)) for r in chat.get("rooms", [])) if chat else None
        try:
            messages = await _messages_per_minute(redis, chat_total, first_minute, minutes)
        except Exception:
            metrics.DASHBOARD_SOURCE_ERRORS.labels("chat").inc()
            messages = [None] * minutes
        stats = {
            "total_users": auth.get("total_users") if auth else None,
            "online_users": presence["online_users"] if presence else None,
            "connections": presence["connections"] if presence else None,
            "connections_by_route": presence["connections_by_route"] if presence else {},
            "today_orders": orders["today_orders"] if orders else None,
            "today_revenue": orders["today_revenue"] if orders else None,
            # The seed's figure; 0 when the report service is absent or down (see reports_available).
            "report_tasks_running": int(reports.get("running", 0)) if isinstance(reports, dict) else 0,
            "reports_available": isinstance(reports, dict),
            "series": {
                "start": first_minute.isoformat(),
                "step_seconds": 60,
                "orders": orders["orders_per_minute"] if orders else [None] * minutes,
                "messages": messages,
            },
            "unavailable": unavailable,
            "interval_seconds": interval(),
            "computed_at": now.isoformat(),
        }
    return stats


async def compute_and_store(redis: Redis, trigger: str) -> bytes:
    """Compute once and keep the result as the snapshot new viewers start from."""
    raw = orjson.dumps(await compute(redis, trigger))
    await redis.set(SNAPSHOT_KEY, raw, px=snapshot_ttl_ms())
    return raw


async def snapshot_or_compute(redis: Redis) -> bytes:
    """The stats for a viewer who just connected: the publisher's latest, when fresh."""
    raw = await redis.get(SNAPSHOT_KEY)
    if raw is not None:
        return raw
    return await compute_and_store(redis, "connect")
