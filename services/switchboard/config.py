"""Every environment variable Switchboard reads, with its default and why you would change it.

This table is the one source of truth for configuration: `make settings` prints it,
docs/configuration.md is generated from it (docs/generate.py), and nothing else
in the code reads `os.environ` for a Switchboard setting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "SWITCHBOARD_SECRET_KEY",
        "dev-insecure-key-change-me-in-production",
        "Signs sessions and access tokens; shared by every service. Set a long random value in production.",
    ),
    Setting("SWITCHBOARD_DEBUG", "0", "1 enables Django debug pages. Never in production."),
    Setting(
        "SWITCHBOARD_DATA_DIR",
        str(ROOT / "var"),
        "Where the SQLite databases and report files live when no DATABASE_URL is set.",
    ),
    Setting(
        "DATABASE_URL",
        "",
        "The service's own database (postgres://... in compose/k8s). Empty: SQLite in SWITCHBOARD_DATA_DIR.",
    ),
    Setting("REDIS_URL", "redis://127.0.0.1:6379/0", "Channel layers, presence, rate limits and the Celery broker."),
    Setting(
        "REDIS_SENTINELS",
        "",
        "Redis Sentinels as host:port, comma separated. Set: every Redis client finds the master through them (and again after a failover); REDIS_URL then gives only db, user, password.",
    ),
    Setting(
        "REDIS_SENTINEL_MASTER",
        "switchboard",
        "Master name the Sentinels monitor. Several, comma separated: the channel layers are sharded over them; presence, rate limits and Celery use the first.",
    ),
    Setting(
        "CHANNEL_LAYER_URLS",
        "",
        "Without Sentinel: redis:// URLs, comma separated, to shard both channel layers over (same order in every process). Empty: REDIS_URL.",
    ),
    Setting("ALLOWED_HOSTS", "*", "Django ALLOWED_HOSTS, comma separated."),
    Setting(
        "ALLOWED_ORIGINS",
        "http://127.0.0.1:8080,http://localhost:8080",
        "Browser Origins allowed to open WebSockets, comma separated. Add your public site's origin.",
    ),
    Setting("TOKEN_TTL_SECONDS", "3600", "Lifetime of an access token from /api/auth/token/."),
    Setting("WS_MAX_MESSAGE_BYTES", "65536", "Largest client frame; above it the socket closes with 1009."),
    Setting(
        "WS_PERMESSAGE_DEFLATE",
        "0",
        "1 lets ws-gateway accept permessage-deflate: less bandwidth, tens of KB more memory per socket.",
    ),
    Setting(
        "WS_PING_INTERVAL_SECONDS",
        "20",
        "How often daphne pings an idle socket. Keep it below every proxy's read timeout (nginx: 60 s by default).",
    ),
    Setting(
        "WS_PING_TIMEOUT_SECONDS",
        "30",
        "A socket that answers no ping for this long is a dead peer: daphne drops it.",
    ),
    Setting(
        "WS_SEND_BUFFER_BYTES",
        "1048576",
        "Bytes ws-gateway holds for one client that does not read; above it the socket closes with 4008.",
    ),
    Setting("RATE_USER_PER_SECOND", "20", "Sustained frames per second per user, across all gateways."),
    Setting("RATE_USER_BURST", "40", "Frames a user may send at once before the per-user limit applies."),
    Setting("RATE_CONN_PER_SECOND", "10", "Sustained frames per second per connection."),
    Setting("RATE_CONN_BURST", "20", "Frames a connection may send at once before its limit applies."),
    Setting(
        "RATE_ROUTE_SCALE",
        "1",
        "Multiplies the per-connection rate and burst a route sets in routes.toml (load and fuzz runs).",
    ),
    Setting(
        "CONNECT_TIMEOUT_SECONDS",
        "5",
        "How long the gateway waits for a service to accept a connection before closing with 1013.",
    ),
    Setting(
        "INBOX_SHARDS",
        "4",
        "Shards per service inbox (chat.0 .. chat.N-1); one key (room, user, document) always maps to one shard.",
    ),
    Setting("INBOX_CAPACITY", "1000", "Commands an inbox shard holds before the gateway answers 'busy'."),
    Setting("INBOX_EXPIRY_SECONDS", "60", "How long a command waits in an inbox for a worker that is down."),
    Setting("PRESENCE_TTL_SECONDS", "30", "A connection not refreshed for this long no longer counts as online."),
    Setting("PRESENCE_HEARTBEAT_SECONDS", "10", "How often each gateway refreshes the presence of its sockets."),
    Setting("TYPING_THROTTLE_SECONDS", "2", "Minimum gap between two typing notices from one user in one room."),
    Setting(
        "ONLINE_USERS_COALESCE_SECONDS",
        "0.2",
        "Chat sends a room's online list at most once per this window (joins and leaves in it share one list).",
    ),
    Setting("HISTORY_LIMIT", "50", "Messages in the history frame of a fresh connection."),
    Setting("SINCE_MAX", "1000", "Most messages replayed to a reconnecting client with ?since=."),
    Setting(
        "COLLAB_COMPACT_UPDATES",
        "200",
        "Updates a collab document's log holds before the worker folds them into its snapshot.",
    ),
    Setting(
        "COLLAB_LIVE_DOCS",
        "500",
        "Documents a collab worker keeps in memory; idle ones beyond this are dropped (reloaded on use).",
    ),
    Setting("METRICS_PORT", "0", "Port of this process's /metrics and /healthz (0: none)."),
    Setting("METRICS_HOST", "127.0.0.1", "Address the metrics port binds to (0.0.0.0 in containers)."),
    Setting("SERVICE_NAME", "", "Name of this process in metrics and logs (set by the launcher)."),
    Setting("GATEWAY_URL", "http://127.0.0.1:8080", "Where services reach each other's REST APIs (the nginx gateway)."),
    Setting("GATEWAY_PORT", "8080", "Port nginx listens on for `make run` (on 127.0.0.1)."),
    Setting("GATEWAY_PROCESSES", "2", "ws-gateway processes the launcher runs behind nginx."),
    Setting("DEMO_PASSWORD", "switchboard", "Password of the demo users alice, bob and admin made by make run."),
    Setting("LOG_LEVEL", "INFO", "Python log level."),
    # ---------------------------------------------------------------- dashboard ----
    Setting(
        "DASHBOARD_STATS_INTERVAL_SECONDS",
        "5",
        "How often the dashboard's one stats publisher computes the stats and pushes stats_update to every viewer.",
    ),
    Setting(
        "DASHBOARD_LEASE_SECONDS",
        "15",
        "Lease of the active stats publisher in Redis; a standby takes over at most this long after the holder dies.",
    ),
    Setting(
        "ALERT_WEBHOOK_SECRET",
        "",
        "Bearer secret Alertmanager sends to POST /api/dashboard/alerts/ (comma-separated: several, to rotate). Empty: the webhook is refused (401).",
    ),  # ------------------------------------------------------------ report worker ----
    Setting(
        "CELERY_VISIBILITY_TIMEOUT_SECONDS",
        "3600",
        "Seconds before the broker hands an unacknowledged task (its worker died) to another worker. Keep it above the longest report, or a report runs twice.",
    ),
    Setting("CELERY_CONCURRENCY", "2", "Report tasks one Celery worker runs at once."),
    Setting(
        "REPORT_STEP_SECONDS",
        "0.5",
        "Pause between a report's progress steps (paces the demo and the tests; 0 in production reports that are slow anyway).",
    ),
    Setting("REPORT_MAX_ROWS", "100000", "Most rows (messages, orders) one report reads from the owning service."),
    Setting("FLOWER_PORT", "5555", "Port Flower listens on (the launcher picks a free one)."),
    Setting(
        "FLOWER_BASIC_AUTH",
        "",
        "user:password pairs (comma separated) Flower asks for itself. Empty: none, nginx's staff check guards /flower/ (make run, k8s). Required in compose, where nginx-proxy routes /flower/ and cannot make that check.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def env(name: str) -> str:
    """The value of a declared setting: the environment's, else its default."""
    return os.environ.get(name, _BY_NAME[name].default)


def default(name: str) -> str:
    """A declared setting's default, whatever this process's environment says (generators of
    compose.yaml and k8s/ write defaults, not the values of the machine they run on)."""
    return _BY_NAME[name].default


def env_int(name: str) -> int:
    return int(env(name))


def env_float(name: str) -> float:
    return float(env(name))


def env_bool(name: str) -> bool:
    return env(name).strip().lower() in ("1", "true", "yes", "on")


def env_list(name: str) -> list[str]:
    return [item.strip() for item in env(name).split(",") if item.strip()]


def main() -> None:
    """Print the table (make settings)."""
    for s in SETTINGS:
        print(f"{s.name}={s.default}\n    {s.doc}")


if __name__ == "__main__":
    main()
