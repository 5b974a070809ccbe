"""Every Prometheus metric of the fleet, in one file, and the per-process exporter.

Names are switchboard_<subsystem>_<name>_<unit>. Label values come from our own
tables (route names, frame types, outcomes), never from clients, so cardinality is
bounded. Each process serves /metrics and /healthz on its own METRICS_PORT, which
nginx never routes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from switchboard.config import env, env_int

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

# ------------------------------------------------------------------ gateway ----
CONNECTIONS = Gauge("switchboard_gateway_connections", "Open WebSockets on this process.", ["route"])
CONNECTS = Counter(
    "switchboard_gateway_connects_total",
    "WebSocket connection attempts by outcome: accepted; client mistakes (bad_origin, unauthorized, forbidden, "
    "unknown_route, too_large); server trouble (inbox_full, service_timeout, backlog).",
    ["route", "outcome"],
)
FRAMES = Counter(
    "switchboard_gateway_frames_total", "WebSocket frames from clients (in) and to them (out).", ["route", "direction"]
)
FRAME_ERRORS = Counter(
    "switchboard_gateway_frame_errors_total",
    "Client frames answered with an error frame, by error code (busy: an inbox is full).",
    ["route", "code"],
)
RATE_LIMITED = Counter(
    "switchboard_gateway_rate_limited_total", "Frames refused by the per-connection or per-user rate limit.", ["scope"]
)
UNKNOWN_MESSAGES = Counter(
    "switchboard_gateway_unknown_messages_total", "Channel-layer messages with no handler (ignored)."
)
CLOSES = Counter(
    "switchboard_gateway_closes_total",
    "Sockets closed by the server, by close code (1001 drain, 1013 service unavailable, 4401 auth, ...).",
    ["route", "code"],
)
STREAM_GAPS = Counter(
    "switchboard_gateway_stream_gaps_total",
    "Sockets closed with 4000 because a broadcast seq never reached them (they reconnect and catch up).",
    ["route"],
)

# -------------------------------------------------------------------- inbox ----
INBOX_COMMANDS = Counter(
    "switchboard_inbox_commands_total",
    "Inbox commands handled, by type and outcome (ok, error: the handler raised, unknown: no handler, shed: a connect refused with 1013, its key's lane over INBOX_LANE_BACKLOG).",
    ["service", "type", "outcome"],
)
INBOX_LATENCY = Histogram(
    "switchboard_inbox_handling_seconds",
    "Time to handle one inbox command.",
    ["service", "type"],
    buckets=LATENCY_BUCKETS,
)
INBOX_HEARTBEAT = Gauge(
    "switchboard_inbox_last_command_timestamp_seconds", "When the worker last handled a command (0: never)."
)
INBOX_SHARD_OWNED = Gauge(
    "switchboard_inbox_shard_owned",
    "1 while this worker owns the inbox shard (lease held, fences raised).",
    ["service", "shard"],
)
INBOX_OWNERSHIP_EVENTS = Counter(
    "switchboard_inbox_ownership_events_total",
    "Shard leases acquired, released (rebalance, shutdown) or lost (expired, fenced out, stalled).",
    ["service", "event"],
)
INBOX_OWNED_COMMANDS = Counter(
    "switchboard_inbox_shard_commands_total",
    "Commands this worker took from a shard it owned, by outcome (ok, error, unknown; refused: its fence at commit said the shard had moved on).",
    ["service", "shard", "outcome"],
)


class InboxBacklog(Collector):
    """switchboard_inbox_backlog_commands{service, shard}: commands waiting in each inbox
    shard, read from Redis when scraped. A service's HTTP process exports it
    (inbox.export_backlog), not its inbox worker, so it is there when the worker is down
    and the backlog matters most. A Redis that does not answer leaves the samples out
    (the scrape still succeeds; SwitchboardProcessDown and /readyz cover Redis)."""

    NAME = "switchboard_inbox_backlog_commands"
    DOC = "Commands of an inbox shard not yet handled: in its queue, or taken by its worker and waiting in a lane or running (read from Redis at scrape time)."

    def __init__(self):
        self.sources: dict[str, Callable[[], dict[str, int]]] = {}

    def watch(self, service: str, read: Callable[[], dict[str, int]]) -> None:
        """Export `read()` ({shard: waiting commands}) for `service` from now on."""
        self.sources[service] = read

    def describe(self):
        yield GaugeMetricFamily(self.NAME, self.DOC, labels=["service", "shard"])

    def collect(self):
        family = GaugeMetricFamily(self.NAME, self.DOC, labels=["service", "shard"])
        for service, read in self.sources.items():
            try:
                depths = read()
            except Exception as exc:
                log.warning("inbox backlog of %s unreadable: %s", service, exc)
                continue
            for shard, waiting in sorted(depths.items()):
                family.add_metric([service, shard], waiting)
        yield family


INBOX_BACKLOG = InboxBacklog()
REGISTRY.register(INBOX_BACKLOG)

# ---------------------------------------------------------------------- chat ----
CHAT_MESSAGES = Counter("switchboard_chat_messages_total", "Chat messages stored and broadcast.", ["outcome"])

# -------------------------------------------------------------------- collab ----
COLLAB_UPDATES = Counter(
    "switchboard_collab_updates_total",
    "Document updates by source (yjs, json) and outcome (stored, empty, duplicate, refused, invalid, error; "
    "gap: a Yjs update arrived after one of its client's was lost, and the client was asked to resync).",
    ["source", "outcome"],
)
COLLAB_PERSIST_SECONDS = Histogram(
    "switchboard_collab_persist_seconds", "Time to store one document update.", buckets=LATENCY_BUCKETS
)
COLLAB_COMPACTIONS = Counter("switchboard_collab_compactions_total", "Update logs folded into a snapshot.")
COLLAB_AWARENESS_DROPPED = Counter(
    "switchboard_collab_awareness_dropped_total",
    "Awareness states not kept nor relayed, by source (yjs, json) and reason (states: the document holds "
    "COLLAB_AWARENESS_STATES; bytes: over COLLAB_AWARENESS_STATE_BYTES).",
    ["source", "reason"],
)
COLLAB_LIVE_DOCS = Gauge("switchboard_collab_live_documents", "Documents held in memory by this worker.")
# ----------------------------------------------------------------- dashboard ----
# trigger: "interval" (the publisher's tick) or "connect" (no fresh snapshot for an
# initial_stats). Its rate is the proof that stats cost does not grow with viewers.
DASHBOARD_STATS_COMPUTATIONS = Counter(
    "switchboard_dashboard_stats_computations_total", "Dashboard stats computations.", ["trigger"]
)
DASHBOARD_STATS_SECONDS = Histogram(
    "switchboard_dashboard_stats_seconds", "Time to compute the dashboard stats once.", buckets=LATENCY_BUCKETS
)
DASHBOARD_SOURCE_ERRORS = Counter(
    "switchboard_dashboard_source_errors_total",
    "A stats source (auth, reports, chat, presence) that failed; its figure is shown as unavailable.",
    ["source"],
)
DASHBOARD_PUBLISHER_ACTIVE = Gauge(
    "switchboard_dashboard_publisher_active", "1 while this process holds the stats publisher lease."
)
DASHBOARD_LEASE_EVENTS = Counter(
    "switchboard_dashboard_lease_events_total", "Stats publisher lease acquired, lost or released.", ["event"]
)
DASHBOARD_ORDERS = Counter("switchboard_dashboard_orders_total", "Orders created over REST.", ["outcome"])
DASHBOARD_ALERTS = Counter(
    "switchboard_dashboard_alerts_total", "Alerts received, by source and outcome.", ["source", "outcome"]
)
DASHBOARD_PUBLISH_ERRORS = Counter(
    "switchboard_dashboard_publish_errors_total",
    "Pushes (new_order, alert, notification) that failed after the data was stored.",
    ["kind"],
)

# ------------------------------------------------------ notification / reports ----
NOTIFICATIONS_CREATED = Counter(
    "switchboard_notifications_created_total",
    "Notifications stored, by path (inbox command, staff REST, or the server API: server_api).",
    ["via"],
)
USER_DIRECTORY_LOOKUPS = Counter(
    "switchboard_user_directory_lookups_total",
    "Username lookups in the Redis user directory: hit, free (no such user), miss or unsettled"
    " (asked of ws-gateway instead), error (Redis did not answer; asked of ws-gateway).",
    ["result"],
)
REPORTS = Counter(
    "switchboard_reports_total", "Report tasks by type and final state (completed, failed, retried).", ["type", "state"]
)
REPORT_SECONDS = Histogram(
    "switchboard_report_seconds",
    "Time from a report task's start to its completion.",
    ["type"],
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
)


_server_started = False
# What /healthz asks (an inbox worker's ownership loop sets it): (ok, why). None: the
# process answers, that is all.
liveness: Callable[[], tuple[bool, str]] | None = None
# Further plain-text pages of the metrics port ({path: body}), e.g. an inbox worker's /handled.
pages: dict[str, Callable[[], bytes]] = {}


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # scrapes every few seconds: not worth a log line
        pass


def _app(environ, start_response):
    path = environ.get("PATH_INFO")
    if path == "/healthz":
        ok, why = liveness() if liveness is not None else (True, "")
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"ok\n" if ok else f"stalled: {why}\n".encode()]
    if path in pages:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [pages[path]()]
    return make_wsgi_app(REGISTRY)(environ, start_response)


def serve(port: int | None = None) -> int | None:
    """Start the exporter in a daemon thread (once per process); returns its port."""
    global _server_started
    port = env_int("METRICS_PORT") if port is None else port
    if _server_started or not port:
        return None
    server = ThreadingWSGIServer((env("METRICS_HOST"), port), _QuietHandler)
    server.set_app(_app)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    _server_started = True
    log.info("metrics on :%d/metrics", port)
    return port


class timer:
    """with timer(histogram.labels(...)): ... observes the elapsed seconds."""

    def __init__(self, histogram):
        self.histogram = histogram

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.histogram.observe(time.perf_counter() - self.start)
