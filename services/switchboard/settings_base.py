"""Django settings every service shares; a service's settings module adds only its own.

Usage in a service: ``from switchboard.settings_base import *`` then
``INSTALLED_APPS += [...]`` and ``DATABASES = database_for("chat")``.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from switchboard import config, logconfig, redisconn
from switchboard.config import env, env_bool, env_int, env_list
from switchboard.routes import MAX_BODY_BYTES

# Every Django process of every service imports this first: one with a setting that does
# not parse refuses to start here, naming it, instead of failing later where it is read.
try:
    config.validate()
except config.SettingsError as exc:
    raise ImproperlyConfigured(str(exc)) from None

SECRET_KEY = env("SWITCHBOARD_SECRET_KEY")
DEBUG = env_bool("SWITCHBOARD_DEBUG")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
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
    "django.middleware.common.CommonMiddleware",
]

TEMPLATES: list = []

REDIS_URL = env("REDIS_URL")


def channel_layers(redis_url: str | None = None) -> dict:
    """Both layers on `redis_url` (tests), else on redisconn's hosts: REDIS_URL, the
    Sentinel-managed master(s), or the CHANNEL_LAYER_URLS shards."""
    hosts = [redis_url] if redis_url else redisconn.layer_hosts()
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
            "BACKEND": "channels_redis.core.RedisChannelLayer",
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
