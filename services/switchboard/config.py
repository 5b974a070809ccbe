"""Every environment variable Switchboard reads, with its type, its default and why you
would change it.

This table is the one source of truth for configuration: `make settings` prints it,
docs/configuration.md is generated from it (docs/generate.py), and nothing else in the
code reads `os.environ` for a Switchboard setting. Each setting has a type (`Kind`),
given as `type=` or inferred from the default; `parse` is the one place a value is
turned into that type. Every process calls `validate()` when it starts (the Django
settings of every service, the launcher) and refuses to start, naming each setting whose
value does not parse, rather than failing later in whichever module reads it first.
Code reads a setting with `value(name)`, or `env_int`/`env_float`/`env_bool`/`env_list`,
which refuse a setting declared with another type.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, FiniteFloat, TypeAdapter, ValidationError

ROOT = Path(__file__).resolve().parents[2]


class Kind(enum.StrEnum):
    """What a setting's value is; `parse` turns the environment's text into it."""

    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"  # 1/0, true/false, yes/no, on/off
    PORT = "port"  # an int 0..65535
    URL = "url"  # scheme://...; empty means unset
    LIST = "list"  # comma separated; empty means none
    URLS = "urls"  # comma separated URLs
    OWNER_URLS = "owner-urls"  # comma separated URLs or owner=URL pairs (SERVICE_URLS)
    KEYRING = "keyring"  # kid:secret, comma separated (parse_keyring); empty means none


@dataclass(frozen=True)
class Setting:
    """One setting. `Setting(name, default, doc)` infers the type from the default (an
    integer, a decimal, a URL, else text); say `type=Kind.BOOL` (or LIST, PORT, ...) where
    that guess is wrong. `minimum` bounds a number; `choices` limits a text; a `secret`
    value is never echoed in an error."""

    name: str
    default: str
    doc: str
    type: Kind = field(default=None, kw_only=True)  # type: ignore[assignment]
    minimum: float | None = field(default=None, kw_only=True)
    choices: tuple[str, ...] = field(default=(), kw_only=True)
    secret: bool = field(default=False, kw_only=True)

    def __post_init__(self):
        if self.type is None:
            object.__setattr__(self, "type", infer(self.default))


def infer(default: str) -> Kind:
    if re.fullmatch(r"-?\d+", default):
        return Kind.INT
    if re.fullmatch(r"-?\d*\.\d+", default):
        return Kind.FLOAT
    if "://" in default:
        return Kind.URL
    return Kind.STR


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "SWITCHBOARD_SECRET_KEY",
        "dev-insecure-key-change-me-in-production",
        "Django's SECRET_KEY (sessions, CSRF); shared by every service. With SWITCHBOARD_DEBUG=0 a process refuses to start on this default or any key under 32 characters.",
        secret=True,
    ),
    Setting(
        "SWITCHBOARD_JWT_KEYS",
        "dev:dev-insecure-jwt-key-change-me-in-production",
        "Access-token keys as kid:secret, comma separated, separate from SWITCHBOARD_SECRET_KEY: the first signs, all verify. Rotate: put a new key first, drop the old after TOKEN_TTL_SECONDS. Refused like the secret key when SWITCHBOARD_DEBUG=0.",
        type=Kind.KEYRING,
        secret=True,
    ),
    Setting(
        "SHOP_JWT_KEYS",
        "",
        "HS256 keys of the shop's own back end as kid:secret, comma separated: a token it signs with one of them (its kid in the header) is accepted like a Switchboard token. Rotate: add the new key, sign with it, drop the old once its tokens expired. A key equal to SWITCHBOARD_SECRET_KEY or a SWITCHBOARD_JWT_KEYS secret refuses start-up. Empty: none.",
        type=Kind.KEYRING,
        secret=True,
    ),
    Setting(
        "SHOP_JWKS",
        "",
        "The shop's public keys for RS256/ES256 tokens: a JWKS file path (re-read when it changes) or an http(s) URL (cached SHOP_JWKS_CACHE_SECONDS). The algorithm is the key's (RSA: RS256, EC P-256: ES256), never the token's. Empty: none.",
    ),
    Setting(
        "SHOP_JWKS_CACHE_SECONDS",
        "300",
        "How long a SHOP_JWKS URL's keys are used before they are fetched again; a token naming an unknown kid fetches at most once per 30 s.",
        type=Kind.FLOAT,
        minimum=1,
    ),
    Setting(
        "SHOP_JWT_AUDIENCE",
        "",
        "Set: a shop token must carry this `aud`. Empty: a shop token must carry none.",
    ),
    Setting(
        "SHOP_JWT_ISSUER",
        "",
        "Set: a shop token must carry this `iss`. Empty: not checked.",
    ),
    Setting(
        "SWITCHBOARD_DEBUG",
        "0",
        "1 enables Django debug pages and lets the documented default secrets start. Never in production.",
        type=Kind.BOOL,
    ),
    Setting(
        "SWITCHBOARD_DATA_DIR",
        str(ROOT / "var"),
        "Where the SQLite databases live when no DATABASE_URL is set (report files are in the database).",
    ),
    Setting(
        "DATABASE_URL",
        "",
        "The service's own database (postgres://... in compose/k8s). Empty: SQLite in SWITCHBOARD_DATA_DIR.",
        type=Kind.URL,
        secret=True,
    ),
    Setting(
        "REDIS_URL",
        "redis://127.0.0.1:6379/0",
        "Channel layers, presence, rate limits and the Celery broker.",
        secret=True,
    ),
    Setting(
        "REDIS_SENTINELS",
        "",
        "Redis Sentinels as host:port, comma separated. Set: every Redis client finds the master through them (and again after a failover); REDIS_URL then gives only db, user, password.",
        type=Kind.LIST,
    ),
    Setting(
        "REDIS_SENTINEL_MASTER",
        "switchboard",
        "Master name the Sentinels monitor. Several, comma separated: the channel layers are sharded over them; presence, rate limits and Celery use the first.",
        type=Kind.LIST,
    ),
    Setting(
        "CHANNEL_LAYER_URLS",
        "",
        "Without Sentinel: redis:// URLs, comma separated, to shard both channel layers over (same order in every process). Empty: REDIS_URL.",
        type=Kind.URLS,
        secret=True,
    ),
    Setting(
        "REDIS_SOCKET_TIMEOUT_SECONDS",
        "5",
        "How long any Switchboard Redis client waits for a reply (or to send) before it gives up with a TimeoutError: a Redis that stops answering without closing its connections (frozen, paused, a dead network path) then fails calls instead of hanging the process. Blocking reads (the inbox doorbell, a worker's wake-up) wait at most 1 s per call, so it must be above that.",
        type=Kind.FLOAT,
        minimum=2,
    ),
    Setting(
        "REDIS_CONNECT_TIMEOUT_SECONDS",
        "2",
        "How long a Redis client waits for a new TCP connection (to a Redis or a Sentinel) before it gives up.",
        type=Kind.FLOAT,
        minimum=0.1,
    ),
    Setting(
        "REDIS_HEALTH_CHECK_SECONDS",
        "15",
        "A pooled Redis connection idle for longer than this is PINGed before its next command, so a connection a Redis restart or a network device dropped silently is replaced instead of failing that command. 0: no check.",
        minimum=0,
    ),
    Setting(
        "ALLOWED_HOSTS",
        "*",
        "Django ALLOWED_HOSTS, comma separated: the public host names browsers use. Compose and k8s set it explicitly (never `*`); the default `*` is for make run on 127.0.0.1.",
        type=Kind.LIST,
    ),
    Setting(
        "INTERNAL_HOSTS",
        "",
        "Host names the deployment's own callers use inside its network (services calling each other, the proxy's staff check, Alertmanager's webhook), added to ALLOWED_HOSTS. Generated for compose and k8s from deploy/fleet.py; operators set only ALLOWED_HOSTS.",
        type=Kind.LIST,
    ),
    Setting(
        "SECURE_COOKIES",
        "0",
        "1 marks the session and CSRF cookies Secure (sent over https only). Set it wherever browsers reach the site over TLS (the k8s prod overlay does); 0 for plain http (make run, compose on localhost), where a Secure cookie would never come back and nobody could log in. HttpOnly (session) and SameSite=Lax hold either way.",
        type=Kind.BOOL,
    ),
    Setting(
        "ALLOWED_ORIGINS",
        "http://127.0.0.1:8080,http://localhost:8080",
        "Browser Origins allowed to open WebSockets, comma separated. Add your public site's origin.",
        type=Kind.LIST,
    ),
    Setting("TOKEN_TTL_SECONDS", "3600", "Lifetime of an access token from /api/auth/token/.", minimum=1),
    Setting("WS_MAX_MESSAGE_BYTES", "65536", "Largest client frame; above it the socket closes with 1009.", minimum=1),
    Setting(
        "WS_PERMESSAGE_DEFLATE",
        "0",
        "1 lets ws-gateway accept permessage-deflate: less bandwidth, tens of KB more memory per socket.",
        type=Kind.BOOL,
    ),
    Setting(
        "WS_PATCHES_DISABLE",
        "",
        "Bench and diagnosis only: ws-gateway library patches (ws_gateway/patches.py names) not to install, comma separated; docs/performance.md measures each one off. Never in production.",
        type=Kind.LIST,
    ),
    Setting(
        "WS_PING_INTERVAL_SECONDS",
        "20",
        "How often daphne pings an idle socket. Keep it below every proxy's read timeout (nginx: 60 s by default).",
        minimum=1,
    ),
    Setting(
        "WS_PING_TIMEOUT_SECONDS",
        "30",
        "A socket that answers no ping for this long is a dead peer: daphne drops it.",
        minimum=1,
    ),
    Setting(
        "WS_SEND_BUFFER_BYTES",
        "1048576",
        "Bytes ws-gateway holds for one client that does not read; above it the socket closes with 4008.",
        minimum=1,
    ),
    Setting(
        "TOKEN_EXPIRY_GRACE_SECONDS",
        "60",
        "An open socket outlives its token's exp by this much, then closes with 4001 (refresh the token, reconnect): time for a client to refresh before it is cut.",
        type=Kind.FLOAT,
        minimum=0,
    ),
    Setting(
        "SESSION_RECHECK_SECONDS",
        "30",
        "How often ws-gateway rechecks the session of each cookie socket; one whose session ended (password changed, logged out, expired) closes with 4401.",
        type=Kind.FLOAT,
        minimum=1,
    ),
    Setting(
        "WS_MAX_SOCKETS_PER_USER",
        "50",
        "Open sockets one user may hold across every gateway (every route, tabs included); the next closes with 4429.",
        type=Kind.INT,
        minimum=1,
    ),
    Setting(
        "WS_MAX_SOCKETS_PER_IP",
        "500",
        "Open sockets one client IP may hold across every gateway (an office behind one NAT shares it); the next closes with 4429. A gateway that dies frees its sockets' slots within PRESENCE_TTL_SECONDS.",
        type=Kind.INT,
        minimum=1,
    ),
    Setting(
        "TRUSTED_PROXIES",
        "127.0.0.1/32,::1/128",
        "Networks (CIDR, comma separated) of the proxies whose X-Real-IP names the client (socket caps, login throttle); from any other peer the peer is the client. Set to your proxy's or ingress's network in compose and k8s.",
        type=Kind.LIST,
    ),
    Setting(
        "LOGIN_FAILURES_PER_USERNAME",
        "5",
        "Wrong passwords for one username (token API and login page) before logins for it answer 429 with Retry-After; refilled over LOGIN_THROTTLE_SECONDS.",
        type=Kind.INT,
        minimum=1,
    ),
    Setting(
        "LOGIN_FAILURES_PER_IP",
        "50",
        "Wrong passwords from one client IP (any username) before its logins answer 429; refilled over LOGIN_THROTTLE_SECONDS.",
        type=Kind.INT,
        minimum=1,
    ),
    Setting(
        "LOGIN_THROTTLE_SECONDS",
        "300",
        "The window the login throttle's failures refill over (a full bucket of failures per window).",
        type=Kind.FLOAT,
        minimum=1,
    ),
    Setting(
        "RATE_USER_PER_SECOND",
        "60",
        "Sustained frames per second per user, across all gateways: two tabs at collab's per-connection rate (30/s, a keystroke is an update and a caret move), so a fast typist with the document open twice is never limited.",
        type=Kind.FLOAT,
        minimum=0,
    ),
    Setting(
        "RATE_USER_BURST",
        "120",
        "Frames a user may send at once before the per-user limit applies.",
        type=Kind.FLOAT,
        minimum=0,
    ),
    Setting("RATE_CONN_PER_SECOND", "10", "Sustained frames per second per connection.", type=Kind.FLOAT, minimum=0),
    Setting(
        "RATE_CONN_BURST",
        "20",
        "Frames a connection may send at once before its limit applies.",
        type=Kind.FLOAT,
        minimum=0,
    ),
    Setting(
        "RATE_ROUTE_SCALE",
        "1",
        "Multiplies the per-connection rate and burst a route sets in routes.toml (load and fuzz runs).",
        type=Kind.FLOAT,
        minimum=0,
    ),
    Setting(
        "API_KEY_RATE_PER_SECOND",
        "50",
        "Sustained server-API requests per second per API key, across every service and replica (a Redis token bucket per key); over it the answer is 429 with Retry-After. A shop with a bigger back end makes several keys or raises this.",
        type=Kind.FLOAT,
        minimum=0.01,
    ),
    Setting(
        "API_KEY_RATE_BURST",
        "100",
        "Server-API requests one API key may make at once before API_KEY_RATE_PER_SECOND applies.",
        type=Kind.FLOAT,
        minimum=1,
    ),
    Setting(
        "CONNECT_TIMEOUT_SECONDS",
        "5",
        "How long the gateway waits for a service to accept a connection before closing with 1013.",
        type=Kind.FLOAT,
        minimum=0,
    ),
    Setting(
        "INBOX_SHARDS",
        "4",
        "Shards per service inbox (chat.0 .. chat.N-1); one key (room, user, document) always maps to one shard.",
        minimum=1,
    ),
    Setting("INBOX_CAPACITY", "1000", "Commands an inbox shard holds before the gateway answers 'busy'.", minimum=1),
    Setting(
        "INBOX_LANES",
        "64",
        "Keys (rooms, documents, users) of one inbox shard whose commands an inbox worker runs at once; each key's commands still run one at a time, in order. A storm into one room takes one lane, so the shard's other rooms are not held behind it.",
        minimum=1,
    ),
    Setting(
        "INBOX_LANE_BACKLOG",
        "1000",
        "Commands of one key (room, document, user) an inbox worker holds waiting in the key's lane; a connect beyond it is refused at once with 1013 (the client retries), as the gateway refuses one when the shard's queue is full. Other commands always wait their turn.",
        minimum=1,
    ),
    Setting(
        "INBOX_HELD_COMMANDS",
        "5000",
        "Commands an inbox worker takes from one shard ahead of running them (waiting in their key's lane, all in the shard's held record in Redis so a crash loses none); beyond it, it takes more as they finish. Another key's command waits behind a storm into one key only once this many of the shard's commands are pending.",
        minimum=1,
    ),
    Setting("INBOX_EXPIRY_SECONDS", "60", "How long a command waits in an inbox for a worker that is down.", minimum=1),
    Setting(
        "PRESENCE_TTL_SECONDS", "30", "A connection not refreshed for this long no longer counts as online.", minimum=1
    ),
    Setting(
        "PRESENCE_HEARTBEAT_SECONDS",
        "10",
        "How often each gateway refreshes the presence of its sockets.",
        type=Kind.FLOAT,
        minimum=0,
    ),
    Setting(
        "TYPING_THROTTLE_SECONDS",
        "2",
        "Minimum gap between two typing notices from one user in one room.",
        type=Kind.FLOAT,
        minimum=0,
    ),
    Setting(
        "INBOX_LEASE_SECONDS",
        "5",
        "Lease of an inbox worker on each of its shards in Redis: a worker that dies, freezes or is cut off from Redis has its shards owned by the others at most this long plus INBOX_RENEW_SECONDS after its last renewal (plus the command in hand on a shard that moves between the others).",
        type=Kind.FLOAT,
        minimum=1,
    ),
    Setting(
        "INBOX_RENEW_SECONDS",
        "1",
        "How often an inbox worker renews its shard leases and announces itself: the others notice a dead worker within this long of its lease running out. A scale-up or clean scale-down moves shards at once (the workers wake each other). Keep it well under INBOX_LEASE_SECONDS.",
        type=Kind.FLOAT,
        minimum=0.05,
    ),
    Setting(
        "INBOX_STALL_SECONDS",
        "20",
        "A command still running after this long means the worker is stuck: it gives up its shards and its /healthz fails.",
        type=Kind.FLOAT,
        minimum=1,
    ),
    Setting(
        "INBOX_RECORD_LIMIT",
        "100000",
        "Commands an inbox worker remembers having handled (shard, fencing token, command id), served as JSON lines on its metrics port's /handled.",
        minimum=1,
    ),
    Setting(
        "INBOX_RECORD_LOG",
        "0",
        "1: an inbox worker also logs one line per command handled (shard, fencing token, command id), a record that outlives a crash.",
        type=Kind.BOOL,
    ),
    Setting(
        "ONLINE_USERS_COALESCE_SECONDS",
        "0.2",
        "Chat holds a room's presence notices for this window and sends them together: the joins as one user_join, the leaves as one user_leave, then one online list.",
        minimum=0,
    ),
    Setting(
        "PRESENCE_NOTICE_BYTES_PER_SECOND",
        "50000000",
        "Bytes of presence notices one chat room may send its sockets per second: a big room's window grows so one flush (its online list to every socket) stays within it. 0: no limit.",
        minimum=0,
    ),
    Setting("HISTORY_LIMIT", "50", "Messages in the history frame of a fresh connection.", minimum=0),
    Setting("SINCE_MAX", "1000", "Most messages replayed to a reconnecting client with ?since=.", minimum=0),
    Setting(
        "FAILPOINTS_DIR",
        "",
        "Tests only: a directory where the fault campaign arms failpoints (switchboard/failpoints.py), places a process kills itself at. Empty (always in production): none.",
    ),
    Setting(
        "COLLAB_COMPACT_UPDATES",
        "200",
        "Updates a collab document's log holds before the worker folds them into its snapshot.",
        minimum=1,
    ),
    Setting(
        "COLLAB_LIVE_DOCS",
        "500",
        "Documents a collab worker keeps in memory; idle ones beyond this are dropped (reloaded on use).",
        minimum=1,
    ),
    Setting(
        "COLLAB_AWARENESS_STATES",
        "200",
        "Awareness states (cursors, presence) one collab document holds and relays: a Yjs client id's state or a JSON socket's caret each count one. Past it a new Yjs state is dropped (never a text frame to a Yjs socket) and a JSON cursor_move is answered with an awareness_limit error frame; the socket stays open and edits go on. Every state is relayed to every socket of the document, so this bounds a document's memory and its fan-out.",
        minimum=1,
    ),
    Setting(
        "COLLAB_AWARENESS_STATE_BYTES",
        "4096",
        "Bytes of one Yjs awareness state (its JSON, UTF-8). A bigger one is dropped, neither kept nor relayed (others keep the sender's last state); y-codemirror's user and cursor take a few hundred.",
        minimum=1,
    ),
    Setting("METRICS_PORT", "0", "Port of this process's /metrics and /healthz (0: none).", type=Kind.PORT),
    Setting("METRICS_HOST", "127.0.0.1", "Address the metrics port binds to (0.0.0.0 in containers)."),
    Setting("SERVICE_NAME", "", "Name of this process in metrics and logs (set by the launcher)."),
    Setting(
        "SERVICE_URLS",
        "http://127.0.0.1:8080",
        "Where a service calls another's REST API, by the owner of the path in routes.toml: one URL (a proxy that routes every path: nginx in make run, nginx-proxy in compose), or owner=URL pairs, comma separated (each owner's internal address, as k8s sets it); a bare URL among them serves the owners not named.",
        type=Kind.OWNER_URLS,
    ),
    Setting("GATEWAY_PORT", "8080", "Port nginx listens on for `make run` (on 127.0.0.1).", type=Kind.PORT),
    Setting("WS_GATEWAY_PROCESSES", "2", "ws-gateway processes the launcher runs behind nginx.", minimum=1),
    Setting(
        "LISTEN_BACKLOG",
        "4096",
        "Listen backlog of every server socket the fleet opens: nginx's `listen ... backlog=` and each daphne's (ws-gateway's and every service's HTTP face). A reconnect storm's connects wait in it while a process is busy; past it the kernel drops them and each waits out SYN retransmits (1, 3, 7, 15 s). daphne's default is 50 and nginx's 511; the kernel caps it at net.core.somaxconn (4096 on Linux 5.4 and later).",
        minimum=1,
    ),
    Setting(
        "DEMO_PASSWORD", "switchboard", "Password of the demo users alice, bob and admin made by make run.", secret=True
    ),
    Setting("LOG_LEVEL", "INFO", "Python log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")),
    Setting(
        "LOG_FORMAT",
        "text",
        "text: one readable line per event (make run); json: one JSON object a line with time, level, logger, message and service (compose, k8s).",
        choices=("text", "json"),
    ),
    # ---------------------------------------------------------------- dashboard ----
    Setting(
        "DASHBOARD_STATS_INTERVAL_SECONDS",
        "5",
        "How often the dashboard's one stats publisher computes the stats and pushes stats_update to every viewer.",
        type=Kind.FLOAT,
        minimum=0,
    ),
    Setting(
        "DASHBOARD_LEASE_SECONDS",
        "15",
        "Lease of the active stats publisher in Redis; a standby takes over at most this long after the holder dies.",
        type=Kind.FLOAT,
        minimum=0,
    ),
    Setting(
        "ALERT_WEBHOOK_SECRET",
        "",
        "Bearer secret Alertmanager sends to POST /api/dashboard/alerts/ (comma-separated: several, to rotate). Empty: the webhook is refused (401).",
        type=Kind.LIST,
        secret=True,
    ),  # ------------------------------------------------------------ report worker ----
    Setting(
        "CELERY_VISIBILITY_TIMEOUT_SECONDS",
        "3600",
        "Seconds before the broker hands an unacknowledged task (its worker died) to another worker. Keep it above the longest report, or a report runs twice.",
        minimum=1,
    ),
    Setting("CELERY_CONCURRENCY", "2", "Report tasks one Celery worker runs at once.", minimum=1),
    Setting(
        "REPORT_STEP_SECONDS",
        "0.5",
        "Pause between a report's progress steps (paces the demo and the tests; 0 in production reports that are slow anyway).",
        minimum=0,
    ),
    Setting(
        "REPORT_MAX_ROWS", "100000", "Most rows (messages, orders) one report reads from the owning service.", minimum=1
    ),
    Setting("FLOWER_PORT", "5555", "Port Flower listens on (the launcher picks a free one).", type=Kind.PORT),
    Setting(
        "FLOWER_BASIC_AUTH",
        "",
        "user:password pairs (comma separated) Flower asks for itself. Empty: none, nginx's staff check guards /flower/ (make run, k8s). Required in compose, where nginx-proxy routes /flower/ and cannot make that check.",
        secret=True,
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}

_ADAPTERS: dict[Kind, TypeAdapter] = {
    Kind.INT: TypeAdapter(int),
    Kind.FLOAT: TypeAdapter(FiniteFloat),
    Kind.BOOL: TypeAdapter(bool),
    Kind.PORT: TypeAdapter(Annotated[int, Field(ge=0, le=65535)]),
}
_WHAT = {
    Kind.INT: "an integer",
    Kind.FLOAT: "a number",
    Kind.BOOL: "a boolean (1/0, true/false, yes/no, on/off)",
    Kind.PORT: "a port number 0..65535",
    Kind.URL: "a URL (scheme://...)",
    Kind.URLS: "comma-separated URLs",
    Kind.OWNER_URLS: "comma-separated URLs or owner=URL pairs",
    Kind.KEYRING: "kid:secret pairs, comma separated",
}


class KeyringError(ValueError):
    """A keyring setting (SWITCHBOARD_JWT_KEYS, SHOP_JWT_KEYS) is not a list of kid:secret pairs."""


def parse_keyring(value: str, name: str = "SWITCHBOARD_JWT_KEYS") -> dict[str, str]:
    """`kid:secret,kid:secret` as {kid: secret}, in order (the first one signs); {} for "".
    The one parser of every keyring setting; its errors name a kid, never a secret."""
    keys: dict[str, str] = {}
    for n, item in enumerate(value.split(","), 1):
        item = item.strip()
        if not item:
            continue
        kid, sep, secret = item.partition(":")
        kid, secret = kid.strip(), secret.strip()
        if not sep or not kid or not secret:
            # Without a colon the item may be a bare secret: name its place, not its text.
            raise KeyringError(f"{name}: {repr(kid) if sep and kid else f'item {n}'} is not kid:secret")
        if kid in keys:
            raise KeyringError(f"{name}: key id {kid!r} is listed twice")
        keys[kid] = secret
    return keys


class SettingsError(ValueError):
    """Settings whose values do not parse; `names` lists them in table order."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.names = [name for name, _ in problems]
        super().__init__(
            "invalid settings (see docs/configuration.md):\n" + "\n".join(f"  {n}: {why}" for n, why in problems)
        )


def _check_url(url: str) -> None:
    """A URL as its readers (redis-py, dj-database-url, httpx) take it: a scheme, `://`,
    and a numeric port if one is given. Stricter parsers (pydantic's AnyUrl) refuse forms
    those readers accept, such as redis://:password@/0 (host defaulted)."""
    if not re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", url):
        raise ValueError(f"expected {_WHAT[Kind.URL]}")
    parts = urlsplit(url)
    if not parts.scheme.startswith("sqlite"):  # sqlite://:memory:
        try:
            parts.port  # noqa: B018 (raises on a port that is not a number)
        except ValueError:
            raise ValueError("expected a numeric port") from None


def _check(setting: Setting, raw: str) -> Any:
    """`raw` as `setting`'s type, or ValueError saying what was expected."""
    kind = setting.type
    if kind is Kind.STR:
        if setting.choices and raw not in setting.choices:
            raise ValueError(f"expected one of {', '.join(setting.choices)}")
        return raw
    if kind is Kind.LIST:
        return [item.strip() for item in raw.split(",") if item.strip()]
    if kind is Kind.URLS:
        items = [item.strip() for item in raw.split(",") if item.strip()]
        for item in items:
            _check_url(item)
        return items
    if kind is Kind.OWNER_URLS:
        items = [item.strip() for item in raw.split(",") if item.strip()]
        for item in items:
            # As switchboard.routes.service_urls reads it: an owner is what comes before "=".
            owner, sep, url = item.partition("=")
            if not sep:
                url = item
            elif not owner.strip():
                raise ValueError(f"expected {_WHAT[kind]}: {item!r} names no owner")
            _check_url(url.strip())
        return items
    if kind is Kind.URL:
        if raw:
            _check_url(raw)
        return raw
    if kind is Kind.KEYRING:
        return parse_keyring(raw, setting.name)
    parsed = _ADAPTERS[kind].validate_python(raw.strip())
    if setting.minimum is not None and parsed < setting.minimum:
        raise ValueError(f"expected at least {setting.minimum:g}")
    return parsed


def _complaint(setting: Setting, raw: str, exc: ValueError) -> str:
    why = f"expected {_WHAT[setting.type]}" if isinstance(exc, ValidationError) else str(exc)
    shown = "(value hidden: a secret)" if setting.secret else repr(raw)
    return f"{shown} is not valid: {why}"


def parse(setting: Setting, raw: str) -> Any:
    """The one parse: `raw` (the environment's text) as the setting's type, or a
    SettingsError naming the setting (and its value, unless it is a secret)."""
    try:
        return _check(setting, raw)
    except ValueError as exc:  # pydantic's ValidationError is one
        raise SettingsError([(setting.name, _complaint(setting, raw, exc))]) from None


# Settings that were renamed: set under the old name, a process refuses to start (the
# value would otherwise be silently ignored) and names the new one.
RENAMED = {
    "GATEWAY_PROCESSES": "WS_GATEWAY_PROCESSES",  # GATEWAY_* is nginx, the public gateway
    "GATEWAY_URL": "SERVICE_URLS",
}


def validate(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every setting parsed from `environ` (default: this process's environment), or one
    SettingsError naming every setting that does not parse or has an old name. Called
    when a process starts."""
    environ = os.environ if environ is None else environ
    values, problems = {}, []
    for old, new in RENAMED.items():
        if old in environ:
            problems.append((old, f"renamed: set {new} instead"))
    for s in SETTINGS:
        raw = environ.get(s.name, s.default)
        try:
            values[s.name] = _check(s, raw)
        except ValueError as exc:
            problems.append((s.name, _complaint(s, raw, exc)))
    if problems:
        raise SettingsError(problems)
    return values


def value(name: str) -> Any:
    """A declared setting's value, of its type: the environment's, else its default."""
    s = _BY_NAME[name]
    return parse(s, os.environ.get(name, s.default))


def env(name: str) -> str:
    """A declared setting's text as the environment gives it (else its default): for
    command lines and URLs passed on as they are. Typed code uses value()."""
    return os.environ.get(name, _BY_NAME[name].default)


def default(name: str) -> str:
    """A declared setting's default, whatever this process's environment says (generators of
    compose.yaml and k8s/ write defaults, not the values of the machine they run on)."""
    return _BY_NAME[name].default


def _typed(name: str, kinds: tuple[Kind, ...], read_as: str) -> Any:
    kind = _BY_NAME[name].type
    if kind not in kinds:
        raise TypeError(
            f"{name} is a{'n' if kind[0] in 'aeiou' else ''} {kind} setting, read as {read_as}: use value()"
        )
    return value(name)


def env_int(name: str) -> int:
    return _typed(name, (Kind.INT, Kind.PORT), "an int")


def env_float(name: str) -> float:
    return _typed(name, (Kind.FLOAT,), "a float")


def env_bool(name: str) -> bool:
    return _typed(name, (Kind.BOOL,), "a bool")


def env_list(name: str) -> list[str]:
    return _typed(name, (Kind.LIST, Kind.URLS, Kind.OWNER_URLS), "a list")


def main() -> None:
    """Print the table (make settings)."""
    for s in SETTINGS:
        print(f"{s.name}={s.default}  ({s.type})\n    {s.doc}")


if __name__ == "__main__":
    main()
