"""Database work of an async view, on a few long-lived threads that keep their connection.

Under ASGI, Django runs each request's sync code in a thread made for that request
(asgiref's ThreadSensitiveContext), so with CONN_MAX_AGE=0 (settings_base.database_for)
every request opens its database connection and closes it: a SQLite file opened with
its pragmas and Django's SQL functions registered (0.7 ms of CPU on the 2-core bench
machine), a PostgreSQL backend forked and authenticated. A longer CONN_MAX_AGE would
leave a connection behind in every request's dead thread. The hot views (notification's
staff POST, ws-gateway's user lookup it calls; issue 21) instead hand their database
work to `run()`: DB_THREADS threads for the process's life, each with one connection
kept open between calls and checked before and after each call as Django checks a
request's (closed when it had errors and is unusable, or autocommit was left off),
as the inbox worker keeps its own (management/commands/inbox.py).

Each call runs in a copy of the caller's context (contextvars), as sync_to_async does.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

DB_THREADS = 2

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _keep_connections() -> None:
    """This thread's connections live as long as the thread (CONN_MAX_AGE None, on this
    thread's copy of the settings only: the request threads keep closing theirs)."""
    from django.db import connections

    for alias in connections:
        conn = connections[alias]
        conn.settings_dict = {**conn.settings_dict, "CONN_MAX_AGE": None}


def _checked(fn: Callable, args: tuple, kwargs: dict) -> Any:
    from django.db import close_old_connections

    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        with _lock:
            if _executor is None:
                _executor = ThreadPoolExecutor(DB_THREADS, thread_name_prefix="db", initializer=_keep_connections)
    return _executor


async def run(fn: Callable, *args, **kwargs) -> Any:
    """`fn(*args, **kwargs)` on a database thread; its result or exception."""
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, _checked, fn, args, kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool(), call)
