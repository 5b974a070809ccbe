"""The REST hot path (issue 21): what a staff notification costs the HTTP process
besides its own work. Behaviour only; the costs are bench/notifypush.py's figures."""

import asyncio

import pytest
from django.middleware import clickjacking, common, security

from notification import store, views
from switchboard import tokens

pytestmark = [pytest.mark.usefixtures("channel_layers"), pytest.mark.django_db(transaction=True)]

ADMIN = {"Authorization": f"Bearer {tokens.issue(tokens.Identity(3, 'admin', True))}"}


def resolver(ids: dict):
    """views.resolve_user as ws-gateway would answer for these users (async, as the view awaits it)."""

    async def resolve(name):
        return ids.get(name)

    return resolve


def on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def test_shared_middleware_runs_on_the_event_loop_with_its_headers(async_client, monkeypatch):
    """Django's SecurityMiddleware, CommonMiddleware and XFrameOptionsMiddleware hand each
    hook to a worker thread and back under ASGI (five round trips a request); theirs never
    block, so they run on the loop, and every response still carries their headers."""
    where: list[tuple[str, bool]] = []
    for cls in (security.SecurityMiddleware, common.CommonMiddleware, clickjacking.XFrameOptionsMiddleware):
        for hook in ("process_request", "process_response"):
            original = getattr(cls, hook, None)
            if original is None:
                continue

            def spy(self, *args, _original=original, _name=f"{cls.__name__}.{hook}"):
                where.append((_name, on_loop()))
                return _original(self, *args)

            monkeypatch.setattr(cls, hook, spy)
    res = await async_client.get("/api/notifications/", headers=ADMIN)
    assert res.status_code == 200
    assert res["X-Frame-Options"] == "DENY" and res["X-Content-Type-Options"] == "nosniff"
    assert len(where) == 5, where
    assert [name for name, loop in where if not loop] == []


async def test_staff_create_pushes_the_notification_then_the_count_once_each(async_client, monkeypatch):
    """One publish call per POST carries both frames, in this order: every tab shows the
    notification once and then the count that includes it."""
    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer

    monkeypatch.setattr(views, "resolve_user", resolver({"bob": 2}))
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(store.group(2), channel)
    await sync_to_async(store.create)(2, "older", "m")
    res = await async_client.post(
        "/api/notifications/", {"user": "bob", "title": "Hi"}, content_type="application/json", headers=ADMIN
    )
    assert res.status_code == 201
    first = await asyncio.wait_for(layer.receive(channel), 5)
    second = await asyncio.wait_for(layer.receive(channel), 5)
    assert first["text"] == store.notification_frame(res.json())
    assert second["text"] == store.count_frame(2)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), 0.5)


async def test_a_caller_that_hangs_up_after_the_store_still_has_it_pushed(monkeypatch):
    """Django cancels a view whose client disconnects; the stored notification is pushed
    anyway (the sync view's thread ran on; the async view shields store-and-push)."""
    import time

    from channels.layers import get_channel_layer
    from django.core.handlers.asgi import ASGIHandler

    monkeypatch.setattr(views, "resolve_user", resolver({"bob": 2}))
    stored = views._store_counted

    def slow_store(*args):
        result = stored(*args)
        time.sleep(0.3)  # the caller hangs up meanwhile
        return result

    monkeypatch.setattr(views, "_store_counted", slow_store)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(store.group(2), channel)
    body = b'{"user": "bob", "title": "hung up"}'
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/notifications/",
        "raw_path": b"/api/notifications/",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"authorization", ADMIN["Authorization"].encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        if messages:
            return messages.pop()
        await asyncio.sleep(0.1)
        return {"type": "http.disconnect"}

    async def send(message):
        pass

    await ASGIHandler()(scope, receive, send)
    frame = await asyncio.wait_for(layer.receive(channel), 5)
    assert '"hung up"' in frame["text"]


async def test_database_threads_keep_their_connections_and_replace_a_broken_one(monkeypatch):
    """dbthread.run: every call on one of DB_THREADS connections, opened once, and a
    connection that errored and is unusable is closed after the call (the next reconnects)."""
    from django.db import connection

    from switchboard import dbthread

    monkeypatch.setattr(dbthread, "DB_THREADS", 1)
    monkeypatch.setattr(dbthread, "_executor", None)

    seen = []  # the connections themselves, kept alive so that no id is reused

    def which():
        connection.ensure_connection()
        seen.append(connection.connection)
        return id(connection.connection)

    first = {await dbthread.run(which) for _ in range(10)}
    again = {await dbthread.run(which) for _ in range(10)}
    assert len(first) == 1 and again == first

    closed = []

    def break_it():
        # The server went away (SQLite's is_usable is always True: PostgreSQL's answer),
        # and the test's in-memory SQLite never really closes: record the close.
        connection.ensure_connection()
        connection.errors_occurred = True
        connection.is_usable = lambda: False
        connection.close = lambda: closed.append(True)

    await dbthread.run(break_it)
    assert closed == [True]
    assert await dbthread.run(lambda: store.create(5, "after", "m")["title"]) == "after"
