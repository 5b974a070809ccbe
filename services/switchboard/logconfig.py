"""How every process logs: the one `logging.config.dictConfig` of the fleet.

Plain text by default (`make run`: one readable line per event on the terminal), or one
JSON object a line with `LOG_FORMAT=json` (compose and k8s, for a log collector), made
by python-json-logger. Either way a line carries the time, level, logger and message;
JSON adds the process's `SERVICE_NAME`, and an exception's traceback goes in `exc_info`.

Library clients stay quiet below WARNING: httpx writes an INFO line for every request
(the dashboard's stats publisher makes three every interval) and tornado one for every
request Flower answers (scrapes and health checks); daphne's access log would write an
HTTP request's query string, token included.
"""

from __future__ import annotations

from switchboard.config import env

FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"

QUIET = ("httpx", "httpcore", "daphne", "django.channels.server", "tornado.access")


def logging_config() -> dict:
    """Django's LOGGING (settings_base) for this process's LOG_LEVEL and LOG_FORMAT."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "text": {"format": FIELDS},
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": FIELDS,
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
                "static_fields": {"service": env("SERVICE_NAME")},
            },
        },
        # A dependency's outage is one line, any other exception a traceback (logpolicy.py).
        "filters": {"outages": {"()": "switchboard.logpolicy.OutageFilter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": env("LOG_FORMAT"), "filters": ["outages"]}
        },
        "root": {"handlers": ["console"], "level": env("LOG_LEVEL")},
        "loggers": {name: {"level": "WARNING"} for name in QUIET},
    }
