"""Django settings every service shares; a service's settings module adds only its own.

Usage in a service: ``from switchboard.settings_base import *`` then
``INSTALLED_APPS += [...]`` and ``DATABASES = database_for("chat")``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from switchboard import config, logconfig, logpolicy, redisconn, tokens
from switchboard.config import default, env, env_bool, env_int, env_list
from switchboard.routes import MAX_BODY_BYTES

# Every Django process of every service imports this first: one with a setting that does
# not parse refuses to start here, naming it, instead of failing later where it is read.
try:
    config.validate()
except config.SettingsError as exc:
    raise ImproperlyConfigured(str(exc)) from None

# Shorter than this is not a random secret (Django's own check warns under 50).
MIN_SECRET_CHARS = 32


def _placeholder(secret: str, documented: str) -> bool:
    # The documented defaults and the examples' "change-me" values (.env.example, k8s).
    return secret == documented or "change-me" in secret.lower() or len(secret) < MIN_SECRET_CHARS


def insecure_secrets(secret_key: str, jwt_keys: str, shop_keys: str = "") -> list[str]:
    """What is wrong with these secrets for a production process (empty: nothing)."""
    problems = []
    if _placeholder(secret_key, default("SWITCHBOARD_SECRET_KEY")):
        problems.append(f"SWITCHBOARD_SECRET_KEY is a documented placeholder or under {MIN_SECRET_CHARS} characters")
    try:
        keys = tokens.keyring(jwt_keys)
        shop = tokens.parse_keyring(shop_keys, "SHOP_JWT_KEYS")
    except tokens.KeyringError as e:
        return [*problems, str(e)]
    documented = next(iter(tokens.parse_keyring(default("SWITCHBOARD_JWT_KEYS")).values()))
    for name, ring in (("SWITCHBOARD_JWT_KEYS", keys), ("SHOP_JWT_KEYS", shop)):
        for kid, secret in ring.items():
            if _placeholder(secret, documented):
                problems.append(
                    f"{name} key {kid!r} is a documented placeholder or under {MIN_SECRET_CHARS} characters"
                )
    for kid, secret in keys.items():
        if secret == secret_key:
            # One leaked secret must not give both sessions and tokens.
            problems.append(f"SWITCHBOARD_JWT_KEYS key {kid!r} is SWITCHBOARD_SECRET_KEY")
    return problems + shop_key_conflicts(secret_key, jwt_keys, shop_keys)


def shop_key_conflicts(secret_key: str, jwt_keys: str, shop_keys: str) -> list[str]:
    """Shop keys that would let the shop's back end (or whoever has its key) sign Django's
    sessions or Switchboard's own tokens, i.e. be any local user: refused in every mode,
    SWITCHBOARD_DEBUG or not. A kid names one key, so none is both kinds."""
    try:
        ours = tokens.parse_keyring(jwt_keys)
        shop = tokens.parse_keyring(shop_keys, "SHOP_JWT_KEYS")
    except tokens.KeyringError as e:
        return [str(e)]
    problems = []
    for kid, secret in shop.items():
        if secret == secret_key:
            problems.append(f"SHOP_JWT_KEYS key {kid!r} is SWITCHBOARD_SECRET_KEY")
        for our_kid, ours_secret in ours.items():
            if secret == ours_secret:
                problems.append(f"SHOP_JWT_KEYS key {kid!r} is SWITCHBOARD_JWT_KEYS key {our_kid!r}")
        if kid in ours:
            problems.append(f"SHOP_JWT_KEYS key id {kid!r} is also a SWITCHBOARD_JWT_KEYS key id")
    return problems


SECRET_KEY = env("SWITCHBOARD_SECRET_KEY")
DEBUG = env_bool("SWITCHBOARD_DEBUG")
if _conflicts := shop_key_conflicts(SECRET_KEY, env("SWITCHBOARD_JWT_KEYS"), env("SHOP_JWT_KEYS")):
    raise ImproperlyConfigured("refusing to start: " + "; ".join(_conflicts) + " (docs/security.md)")


def insecure_jwks(jwks: str) -> list[str]:
    """A SHOP_JWKS fetched over plain http from another host: whoever is on the path could
    serve keys of their own and sign tokens for any shop user (refused in production)."""
    parts = urlsplit(jwks.strip())
    if parts.scheme.lower() == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return ["SHOP_JWKS is a plain-http URL of another host: use https (or a file)"]
    return []


if not DEBUG and (
    _problems := insecure_secrets(SECRET_KEY, env("SWITCHBOARD_JWT_KEYS"), env("SHOP_JWT_KEYS"))
    + insecure_jwks(env("SHOP_JWKS"))
):
    raise ImproperlyConfigured(
        "refusing to start with SWITCHBOARD_DEBUG=0: " + "; ".join(_problems) + " (docs/security.md)"
    )
# The public names plus the deployment's internal ones (generated from deploy/fleet.py),
# so an operator names only the public host and service-to-service calls still pass.
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") + env_list("INTERNAL_HOSTS")
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
APPEND_SLASH = True
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
    "switchboard",
]

MIDDLEWARE = [
    # Django's own, run on the event loop without thread hand-offs (switchboard/middleware.py).
    # nosniff, Referrer-Policy and Cross-Origin-Opener-Policy on every response.
    "switchboard.middleware.SecurityMiddleware",
    "switchboard.middleware.CommonMiddleware",
    # No page of Switchboard is meant to be framed (clickjacking): DENY.
    "switchboard.middleware.XFrameOptionsMiddleware",
]
X_FRAME_OPTIONS = "DENY"
# Behind TLS the proxy says so (nginx and nginx-proxy overwrite X-Forwarded-Proto with the
# scheme they were reached by), so is_secure() and the CSRF origin check see https.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def cookie_settings() -> dict[str, object]:
    """Django's cookie settings, from SECURE_COOKIES: Secure only behind TLS (a browser on
    plain http drops a Secure cookie, so nobody could log in under `make run`). The session
    cookie is never readable by scripts, and both stay on same-site requests and top-level
    navigations (Lax): a cross-site POST carries neither."""
    secure = env_bool("SECURE_COOKIES")
    return {
        "SESSION_COOKIE_SECURE": secure,
        "CSRF_COOKIE_SECURE": secure,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SAMESITE": "Lax",
    }


_cookies = cookie_settings()
SESSION_COOKIE_SECURE = _cookies["SESSION_COOKIE_SECURE"]
CSRF_COOKIE_SECURE = _cookies["CSRF_COOKIE_SECURE"]
SESSION_COOKIE_HTTPONLY = _cookies["SESSION_COOKIE_HTTPONLY"]
SESSION_COOKIE_SAMESITE = _cookies["SESSION_COOKIE_SAMESITE"]
CSRF_COOKIE_SAMESITE = _cookies["CSRF_COOKIE_SAMESITE"]

TEMPLATES: list = []

REDIS_URL = env("REDIS_URL")


def channel_layers(redis_url: str | None = None) -> dict:
    """Both layers on `redis_url` (tests), else on redisconn's hosts: REDIS_URL, the
    Sentinel-managed master(s), or the CHANNEL_LAYER_URLS shards."""
    # Every host with redisconn's socket timeouts: a stalled Redis fails a send or a
    # publish instead of hanging it.
    hosts = [redisconn.layer_host(h) for h in ([redis_url] if redis_url else redisconn.layer_hosts())]
    return {
        # Connection channels and groups: one PUBLISH per broadcast, fanned out locally
        # by every gateway process that has a member (docs/architecture.md, "Parts").
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": hosts, "prefix": "sb"},
        },
        # Service inboxes: named channels load-balanced over workers, with capacity and
        # expiry, so a full or absent service is a clear "busy" rather than a hang.
        "inbox": {
            "BACKEND": "switchboard.ownership.InboxLayer",
            "CONFIG": {
                "hosts": hosts,
                "prefix": "sb-inbox",
                "capacity": env_int("INBOX_CAPACITY"),
                "expiry": env_int("INBOX_EXPIRY_SECONDS"),
            },
        },
    }


CHANNEL_LAYERS = channel_layers()

LOGGING = logconfig.logging_config()
logpolicy.install()


def database_for(service: str) -> dict:
    """The service's own database: DATABASE_URL, else a SQLite file of its own."""
    url = env("DATABASE_URL")
    if not url:
        data_dir = Path(env("SWITCHBOARD_DATA_DIR"))
        data_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{data_dir / (service + '.sqlite3')}"
    config = dj_database_url.parse(url, conn_max_age=0)
    if config["ENGINE"].endswith("sqlite3"):
        # WAL lets the HTTP process read while the inbox worker writes. synchronous=NORMAL
        # is WAL's recommended level: a commit survives any process crash (invariant 4)
        # and only an OS crash can lose the last ones; FULL fsyncs on every commit, which
        # was most of a chat message's handling time (make bench, docs/performance.md).
        config["OPTIONS"] = {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "timeout": 20}
    return {"default": config}
