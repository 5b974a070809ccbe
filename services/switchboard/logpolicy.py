"""How Switchboard's logs tell an outage from a bug.

A dependency that is down (Redis refusing connections during a restart, PostgreSQL
restarting) makes many handled operations fail at once: a push that could not be
sent, a presence refresh, a publisher tick. Each is logged where it is handled, and
each used to carry a full traceback, hundreds per outage, in which a real crash could
not be seen. OutageFilter, on every process's console handler (settings_base.LOGGING),
logs such a record as one line naming the failure (`... [outage: ConnectionError:
Error 111 connecting to ...]`) without its traceback. Any other exception keeps its
traceback, so a traceback in a log is a bug: the fault campaign fails on any
(tests-e2e/fleetenv.py).
"""

from __future__ import annotations

import logging
import sys
import threading

# Failures of reaching a dependency, not of the code: matched anywhere in the chain.
_OUTAGE_NAMES = {
    ("redis.exceptions", "ConnectionError"),
    ("redis.exceptions", "TimeoutError"),
    ("redis.exceptions", "BusyLoadingError"),
    ("kombu.exceptions", "OperationalError"),
}
_OUTAGE_OS = (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
# psycopg says "connection failed" / "server closed the connection" in an
# OperationalError; other OperationalErrors (a lock timeout, SQLite's "database is
# locked") are not outages and keep their traceback.
_PG_OUTAGE_TEXT = ("connection failed", "server closed the connection", "terminating connection", "Connection refused")


def outage(exc: BaseException | None) -> BaseException | None:
    """The exception in `exc`'s chain that says a dependency is unreachable, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        kind = type(exc)
        if isinstance(exc, _OUTAGE_OS) or any((k.__module__, k.__name__) in _OUTAGE_NAMES for k in kind.__mro__):
            return exc
        if kind.__name__ == "OperationalError" and any(t in str(exc) for t in _PG_OUTAGE_TEXT):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


class OutageFilter(logging.Filter):
    """One line, no traceback, for a record whose exception is an outage."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            cause = outage(record.exc_info[1])
            if cause is not None:
                record.msg = f"{record.getMessage()} [outage: {type(cause).__name__}: {str(cause)[:200]}]"
                record.args = None
                record.exc_info = None
                record.exc_text = None
        return True


def _log_uncaught(kind, exc, tb) -> None:
    if issubclass(kind, KeyboardInterrupt):
        return sys.__excepthook__(kind, exc, tb)
    logging.getLogger("switchboard.uncaught").critical(
        "uncaught exception: the process exits", exc_info=(kind, exc, tb)
    )


def _log_uncaught_in_thread(args) -> None:
    logging.getLogger("switchboard.uncaught").critical(
        "uncaught exception in thread %s",
        args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def install() -> None:
    """An exception nothing caught goes through logging too (settings_base calls this):
    with LOG_FORMAT=json it is one JSON line, not a raw traceback on stderr, and an
    outage that ends a process (an inbox worker's Redis connection refused; supervisord
    restarts it) is one line like any other outage."""
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
