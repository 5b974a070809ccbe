"""Issue 16, the HTTP side, from outside through nginx: tokens are signed with keys of
their own, a report reads with its requester's rights, stored text is checked, pages
carry the browser's protections."""

from __future__ import annotations

import time

import httpx
import jwt


def auth(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


def test_a_token_signed_with_djangos_secret_key_is_refused(fleet, tokens):
    """Django's SECRET_KEY (sessions, CSRF) must not mint access tokens: whoever learns it
    (a debug page, a settings dump) would otherwise be any user, staff included."""
    claims = jwt.decode(tokens["alice"], options={"verify_signature": False})
    claims.update(sub="1", name="admin", staff=True, exp=int(time.time()) + 600)
    header = jwt.get_unverified_header(tokens["alice"])
    secret = fleet.setting("SWITCHBOARD_SECRET_KEY")
    for headers in ({k: v for k, v in header.items() if k == "kid"} or None, None):
        forged = jwt.encode(claims, secret, algorithm="HS256", headers=headers)
        res = httpx.get(f"{fleet.url}/api/auth/me/", headers=auth(forged))
        assert res.status_code == 401, res.text
    # The fleet's own token still works.
    assert httpx.get(f"{fleet.url}/api/auth/me/", headers=auth(tokens["alice"])).status_code == 200


async def report_file(fleet, tok: str, body: dict) -> bytes:
    """Request a report as `tok`'s user, wait for it on /ws/tasks/, download it."""
    from test_reports import request_report, updates_until_done
    from wsclient import Client

    tasks = await Client.connect(f"{fleet.ws_url}/ws/tasks/", tok)
    task_id = await request_report(fleet, tok, body)
    frames = await updates_until_done(tasks, task_id)
    await tasks.close()
    assert frames[-1]["status"] == "completed", frames[-1]
    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.get(f"{fleet.url}{frames[-1]['result']['url']}", headers=auth(tok))
    assert res.status_code == 200
    return res.content


def pdf_text(data: bytes) -> str:
    import io

    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


async def test_orders_summary_of_a_user_lists_only_that_users_orders(fleet, tokens):
    """alice (not staff) asks for orders_summary: the worker used to read /api/orders/ with
    a staff service token, and alice's PDF listed bob's orders with his name and totals."""
    async with httpx.AsyncClient(timeout=30) as http:
        mine = await http.post(f"{fleet.url}/api/orders/", json={"total": "123.45"}, headers=auth(tokens["alice"]))
        bobs = await http.post(f"{fleet.url}/api/orders/", json={"total": "987.65"}, headers=auth(tokens["bob"]))
        assert mine.status_code == 201 and bobs.status_code == 201, (mine.text, bobs.text)
        count = (await http.get(f"{fleet.url}/api/orders/?limit=1", headers=auth(tokens["alice"]))).json()["count"]
    text = pdf_text(await report_file(fleet, tokens["alice"], {"type": "orders_summary"}))
    assert "123.45" in text
    assert "987.65" not in text and "bob" not in text, text
    assert f"{count} orders" in text
    # Staff still get the whole shop.
    text = pdf_text(await report_file(fleet, tokens["admin"], {"type": "orders_summary"}))
    assert "987.65" in text and "123.45" in text


# ---- stored text: links that can only be followed, no control characters ----
async def test_notification_urls_are_http_https_or_a_path_on_this_site(fleet, tokens):
    async with httpx.AsyncClient(timeout=30) as http:

        async def create(url: str) -> httpx.Response:
            body = {"user": "alice", "title": "a link", "url": url}
            return await http.post(f"{fleet.url}/api/notifications/", json=body, headers=auth(tokens["admin"]))

        for bad in (
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "data:text/html,x",
            "//evil.example/x",
            "/\\evil.example",
            "vbscript:x",
            "https:///nohost",
        ):
            res = await create(bad)
            assert res.status_code == 400, (bad, res.status_code, res.text)
            assert "url" in res.json()["message"]
        for good in ("/reports/", "https://shop.example.com/orders/7", "http://localhost:8080/x?y=1", ""):
            assert (await create(good)).status_code == 201, good


CONTROL_TEXT = ["bad\x00name", "bell\x07", "esc\x1b[31mred", "c1\x85"]


async def test_control_characters_are_refused_wherever_text_is_stored(fleet, tokens):
    """A room named with a NUL was a 201 on SQLite (PostgreSQL refuses NUL: a 500 there)."""
    writes = [
        ("/api/chat/rooms/", "alice", lambda t: {"name": t}),
        ("/api/chat/rooms/", "alice", lambda t: {"name": "fine", "description": t}),
        ("/api/notifications/", "admin", lambda t: {"user": "alice", "title": t}),
        ("/api/notifications/", "admin", lambda t: {"user": "alice", "title": "ok", "message": t}),
        ("/api/collab/documents/", "alice", lambda t: {"title": t}),
        ("/api/collab/documents/", "alice", lambda t: {"title": "ok", "content": t}),
        ("/api/orders/", "alice", lambda t: {"total": "2.00", "items": [{"name": t, "quantity": 1, "price": "2.00"}]}),
        ("/api/reports/", "alice", lambda t: {"type": "chat_transcript", "room": t}),
        ("/api/dashboard/alerts/", "admin", lambda t: {"level": "info", "message": t}),
    ]
    async with httpx.AsyncClient(timeout=30) as http:
        for path, who, body in writes:
            for text in CONTROL_TEXT:
                res = await http.post(f"{fleet.url}{path}", json=body(text), headers=auth(tokens[who]))
                assert res.status_code == 400, (path, repr(text), res.status_code, res.text)
                assert res.json()["error"] == "invalid_text", (path, res.text)
        # Tabs and newlines are text: a multi-line description is fine.
        res = await http.post(
            f"{fleet.url}/api/chat/rooms/",
            json={"name": f"ok {time.time_ns()}", "description": "two\nlines\tand a tab"},
            headers=auth(tokens["alice"]),
        )
        assert res.status_code == 201, res.text


async def test_a_chat_message_with_a_nul_gets_an_error_frame_and_the_socket_keeps_working(fleet, tokens):
    from wsclient import Client

    chat = await Client.connect(f"{fleet.ws_url}/ws/chat/lobby/", tokens["alice"])
    await chat.send({"type": "chat_message", "message": "nul\x00here", "client_id": "nul-1"})
    error = await chat.next_of("error", timeout=10)
    assert error["code"] == "invalid_frame" and "control character" in error["message"], error
    await chat.send({"type": "chat_message", "message": "still here", "client_id": "nul-2"})
    echoed = await chat.next_of("chat_message", timeout=10, client_id="nul-2")
    assert echoed["message"] == "still here"
    assert not [f for f in chat.frames if f.get("type") == "chat_message" and "\x00" in f.get("message", "")]
    await chat.close()


async def test_the_bell_never_renders_a_javascript_url_as_a_link(fleet, tokens, browser):
    """Rows stored before URLs were checked may hold javascript: or data: URLs: the bell
    shows them as plain text. (Written into notification's database as such a row is.)"""
    import sqlite3
    from pathlib import Path

    from browser import login

    me = httpx.get(f"{fleet.url}/api/auth/me/", headers=auth(tokens["alice"])).json()
    db = sqlite3.connect(Path(fleet.setting("SWITCHBOARD_DATA_DIR")) / "notification.sqlite3", timeout=20)
    stamp = time.time_ns()
    with db:
        for i, url in enumerate(("javascript:alert(document.cookie)", "data:text/html,<b>x</b>", "/reports/")):
            db.execute(
                "INSERT INTO notification_notification (user_id, title, message, url, is_read, created_at)"
                " VALUES (?, ?, '', ?, 0, datetime('now'))",
                (me["id"], f"old row {stamp} {i}", url),
            )
    db.close()
    page = await login(browser, fleet.url, "alice")
    await page.click("#bell")
    items = page.locator("#bell-list li")
    await items.filter(has_text=f"old row {stamp} 0").wait_for(timeout=15000)
    assert await page.locator("#bell-list a[href^='javascript:'], #bell-list a[href^='data:']").count() == 0
    for i in (0, 1):
        assert await items.filter(has_text=f"old row {stamp} {i}").locator("a").count() == 0
    link = items.filter(has_text=f"old row {stamp} 2").locator("a")
    assert await link.get_attribute("href") == "/reports/"


def test_pages_and_apis_carry_the_browser_protections(fleet, tokens):
    """Clickjacking and MIME sniffing: none of these headers were sent before."""
    for path, headers in (
        ("/login/", {}),
        ("/api/auth/me/", auth(tokens["alice"])),
        ("/api/chat/rooms/", auth(tokens["alice"])),
    ):
        res = httpx.get(f"{fleet.url}{path}", headers=headers)
        assert res.status_code == 200, (path, res.status_code)
        assert res.headers.get("x-frame-options") == "DENY", path
        assert res.headers.get("x-content-type-options") == "nosniff", path
        assert res.headers.get("referrer-policy") == "same-origin", path


def test_a_body_over_the_proxys_limit_gets_the_documented_json_413(fleet, tokens):
    """nginx refuses a body over routes.MAX_BODY_BYTES before any service sees it; the
    OpenAPI documents list that 413 with the APIs' error shape (schemathesis found
    nginx's HTML page on POST /api/collab/documents/, an undocumented answer)."""
    from switchboard.routes import MAX_BODY_BYTES

    body = b'{"title": "t", "content": "' + b"a" * (MAX_BODY_BYTES + 1) + b'"}'
    res = httpx.post(
        f"{fleet.url}/api/collab/documents/",
        content=body,
        headers={**auth(tokens["alice"]), "Content-Type": "application/json"},
        timeout=30,
    )
    assert res.status_code == 413
    assert res.headers["content-type"].startswith("application/json")
    assert res.json()["error"] == "body_too_large"
    # The same connection pool still works: a normal request is answered.
    assert httpx.get(f"{fleet.url}/api/auth/me/", headers=auth(tokens["alice"])).status_code == 200
