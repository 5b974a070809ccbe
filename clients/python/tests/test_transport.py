"""The request policy against a real HTTP server that fails as told: retries with the
same Idempotency-Key, Retry-After, timeouts, the errors raised, sync and async alike."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import switchboard_client as sb


class Script:
    """Answers, in order, for the server's requests (the last one repeats); what came in."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.seen: list[dict] = []


@pytest.fixture
def server():
    script = Script((200, {}, {}))

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            script.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
            status, headers, payload = script.answers[min(len(script.seen), len(script.answers)) - 1]
            if payload == "sleep":
                time.sleep(1.5)
                status, payload = 200, {}
            data = json.dumps(payload).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    script.url = f"http://127.0.0.1:{httpd.server_port}"
    yield script
    httpd.shutdown()
    httpd.server_close()


def client(server, **kw):
    return sb.Client(server.url, api_key="sbk_test_key", backoff=0.01, **kw)


def test_a_post_retried_after_503s_sends_one_idempotency_key(server):
    server.answers = [(503, {}, {"error": "busy", "message": "m"}), (502, {}, {}), (201, {}, {"id": 7})]
    with client(server) as c:
        assert c.request("POST", "/api/x/", json={"a": 1}) == {"id": 7}
    keys = {r["headers"]["Idempotency-Key"] for r in server.seen}
    assert len(server.seen) == 3 and len(keys) == 1
    assert all(r["headers"]["Authorization"] == "Bearer sbk_test_key" for r in server.seen)
    assert all(json.loads(r["body"]) == {"a": 1} for r in server.seen)


def test_the_callers_idempotency_key_is_sent(server):
    server.answers = [(201, {}, {})]
    with client(server) as c:
        c.request("POST", "/api/x/", json={}, idempotency_key="order-1234-shipped")
        c.request("GET", "/api/x/")
    assert server.seen[0]["headers"]["Idempotency-Key"] == "order-1234-shipped"
    assert "Idempotency-Key" not in server.seen[1]["headers"]


def test_429_waits_retry_after_then_gives_up_as_rate_limited(server):
    server.answers = [(429, {"Retry-After": "0"}, {"error": "rate_limited", "message": "slow down"})]
    with client(server, retries=2) as c, pytest.raises(sb.RateLimited) as info:
        c.request("POST", "/api/x/", json={})
    assert len(server.seen) == 3
    err = info.value
    assert (err.status, err.code, err.message, err.retry_after, err.attempts) == (
        429,
        "rate_limited",
        "slow down",
        0,
        3,
    )


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, sb.BadRequest), (401, sb.Unauthorized), (403, sb.Forbidden), (404, sb.NotFound), (409, sb.Conflict)],
)
def test_a_client_error_is_raised_at_once_not_retried(server, status, cls):
    server.answers = [(status, {}, {"error": "some_code", "message": "what is wrong"})]
    with client(server) as c, pytest.raises(cls) as info:
        c.request("POST", "/api/x/", json={})
    assert len(server.seen) == 1
    assert (info.value.code, info.value.message) == ("some_code", "what is wrong")


def test_5xx_on_every_attempt_is_a_server_error(server):
    server.answers = [(503, {}, {"error": "key_store_unavailable", "message": "retry"})]
    with client(server, retries=1) as c, pytest.raises(sb.Unavailable):
        c.request("GET", "/api/x/")
    assert len(server.seen) == 2


def test_a_timeout_is_retried_then_raised(server):
    server.answers = [(200, {}, "sleep")]
    with client(server, timeout=0.3, retries=1) as c, pytest.raises(sb.Timeout) as info:
        c.request("POST", "/api/x/", json={})
    assert info.value.attempts == 2
    assert len({r["headers"]["Idempotency-Key"] for r in server.seen}) == 1


def test_nobody_listening_is_a_transport_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with sb.Client(f"http://127.0.0.1:{port}", retries=2, backoff=0.01) as c, pytest.raises(sb.TransportError) as info:
        c.request("GET", "/api/x/")
    assert info.value.attempts == 3 and not isinstance(info.value, sb.Timeout)


async def test_the_async_client_follows_the_same_policy(server):
    server.answers = [(503, {}, {}), (429, {"Retry-After": "0"}, {}), (201, {}, {"ok": True})]
    async with sb.AsyncClient(server.url, api_key="k", backoff=0.01) as c:
        assert await c.request("POST", "/api/x/", json={"b": 2}) == {"ok": True}
        server.answers = [(404, {}, {"error": "not_found", "message": "no"})]
        with pytest.raises(sb.NotFound):
            await c.request("GET", "/api/y/")
    assert len({r["headers"]["Idempotency-Key"] for r in server.seen[:3]}) == 1


def test_settings_from_the_environment(monkeypatch, server):
    monkeypatch.setenv("SWITCHBOARD_URL", server.url + "/")
    monkeypatch.setenv("SWITCHBOARD_API_KEY", "sbk_env")
    with sb.Client() as c:
        c.request("GET", "/api/x/")
    assert server.seen[-1]["headers"]["Authorization"] == "Bearer sbk_env"
    monkeypatch.delenv("SWITCHBOARD_URL")
    with pytest.raises(ValueError, match="SWITCHBOARD_URL"):
        sb.Client()


def test_notify_sends_the_server_apis_body(server):
    server.answers = [(201, {}, {"id": 1})]
    with client(server) as c:
        assert c.notify("Shipped", "Your order left", "/orders/9/", sub=42, name="ann", idempotency_key="o-9") == {
            "id": 1
        }
        c.notify("Hi", user_id=5)
    first, second = server.seen
    assert (first["method"], first["path"]) == ("POST", "/api/notifications/send/")
    assert json.loads(first["body"]) == {
        "sub": "42",
        "name": "ann",
        "title": "Shipped",
        "message": "Your order left",
        "url": "/orders/9/",
    }
    assert first["headers"]["Idempotency-Key"] == "o-9"
    assert json.loads(second["body"]) == {"user_id": 5, "title": "Hi", "message": ""}
    for bad in ({}, {"sub": 1, "user_id": 2}, {"user_id": 2, "name": "x"}):
        with pytest.raises(ValueError):
            sb.Client(server.url).notify("t", **bad)


def test_dashboard_and_task_calls_send_the_server_apis_bodies(server):
    import datetime
    from decimal import Decimal

    server.answers = [(201, {}, {})]
    when = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.UTC)
    with client(server) as c:
        c.dashboard_order({"id": 9, "user": "ann", "total": Decimal("3.50"), "created": when}, store=True)
        c.dashboard_alert("disk", "critical")
        c.task_update("t-1", "progress", 40, "reading", sub="s-1")
    order, alert, task = (json.loads(r["body"]) for r in server.seen)
    assert server.seen[0]["path"] == "/api/dashboard/events/" and server.seen[2]["path"] == "/api/reports/task-updates/"
    assert order == {
        "type": "new_order",
        "order": {"id": 9, "user": "ann", "total": "3.50", "created": "2026-12-07T10:00:00+00:00"},
        "store": True,
    }
    assert alert == {"type": "alert", "level": "critical", "message": "disk"}
    assert task == {
        "sub": "s-1",
        "task_id": "t-1",
        "status": "progress",
        "progress": 40,
        "message": "reading",
        "result": {},
    }


CALLS = [
    ("notify", ("Shipped", "Your order left", "/orders/9/"), {"sub": 42, "name": "ann", "idempotency_key": "o-9"}),
    ("dashboard_order", ({"id": 9, "user": "ann", "total": "3.50"},), {"store": True, "idempotency_key": "o-9"}),
    ("system_message", ("lobby", "Order 9 shipped"), {"idempotency_key": "o-9"}),
    ("dashboard_alert", ("disk", "critical"), {}),
    ("task_update", ("t-1", "completed", 100, "done", {"url": "/r/1"}), {"user_id": 5}),
]


@pytest.mark.parametrize(("call", "args", "kwargs"), CALLS, ids=[c[0] for c in CALLS])
async def test_every_call_of_the_async_client_sends_what_the_sync_client_sends(server, call, args, kwargs):
    server.answers = [(201, {}, {"id": 1})]
    with client(server) as c:
        assert getattr(c, call)(*args, **kwargs) == {"id": 1}
    async with sb.AsyncClient(server.url, api_key="sbk_test_key", backoff=0.01) as c:
        assert await getattr(c, call)(*args, **kwargs) == {"id": 1}
    sync, async_ = server.seen
    assert (sync["method"], sync["path"], json.loads(sync["body"])) == (
        async_["method"],
        async_["path"],
        json.loads(async_["body"]),
    )
    if "idempotency_key" in kwargs:
        assert sync["headers"]["Idempotency-Key"] == async_["headers"]["Idempotency-Key"] == "o-9"
