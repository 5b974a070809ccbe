"""The authorization matrix: every route of gateway/routes.toml and every URL pattern of
every service, every HTTP method, six identities and every token carrier, against real
objects of alice's, compared with the explicit table in authz_table.py.

A cell is a leak when someone is let in where the table says no (a 2xx or an open
socket), or when an answer or a frame shows them an object they may not see (each of
alice's and bob's objects holds a unique marker, looked for in every body and frame,
PDF streams inflated). WebSockets are not judged by the handshake alone: every socket
of a wave stays connected while alice acts on her objects (edits her document, writes
in her room, gets a notification, orders, runs a report), and what each one then
receives is checked; alice's own sockets must receive her fresh markers, so "bob got
none" is not vacuous.

`test_every_route_and_pattern_has_a_row` fails for a URL pattern or route without a
row, so a new endpoint cannot land unexamined. Sizes: `matrix_size()`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
import uuid
import zlib
from dataclasses import dataclass
from unittest import mock

import httpx
import jwt
import pytest
import websockets
from authz_table import (
    HTTP_CARRIERS,
    HTTP_ROWS,
    IDENTITIES,
    LOGIN,
    METHODS,
    OPEN,
    SAFE,
    SEES,
    WS_CARRIERS,
    WS_ROWS,
    HttpRow,
    WsRow,
    carried,
)
from urlconfs import all_url_patterns
from wsclient import PASSWORD

from switchboard import routes
from switchboard import tokens as jwt_tokens

FOREIGN_ORIGIN = "https://evil.example"
# How long every socket of a wave listens after alice has acted: her report's first
# progress frames take a Celery round trip; the rest arrive well within this.
LISTEN_SECONDS = 3.0
SETTLE_SECONDS = 1.5  # handshakes answered and first frames in, before alice acts
USERNAMES = {"alice": "alice", "bob": "bob", "staff": "admin"}


def matrix_size() -> dict[str, int]:
    http = len(HTTP_ROWS) * len(METHODS) * len(IDENTITIES) * len(HTTP_CARRIERS)
    ws = len(WS_ROWS) * len(IDENTITIES) * len(WS_CARRIERS)
    return {"http_rows": len(HTTP_ROWS), "http_cells": http, "ws_rows": len(WS_ROWS), "ws_cells": ws}


# ------------------------------------------------------------------- coverage ----
def test_every_route_and_pattern_has_a_row():
    table = routes.load()
    patterns = all_url_patterns()
    covered = {r.pattern for r in HTTP_ROWS}
    missing = [p for p in patterns if p not in covered]
    missing += [f"[[http]] {h.prefix}" for h in table.http if not any(r.url.startswith(h.prefix) for r in HTTP_ROWS)]
    missing += [f"[[websocket]] {w.name}" for w in table.websocket if w.name not in {r.route for r in WS_ROWS}]
    assert missing == [], f"add rows to authz_table.py for {missing}"
    prefixes = [h.prefix for h in table.http]
    stale = [r.pattern for r in HTTP_ROWS if r.pattern not in patterns and r.pattern not in prefixes]
    assert stale == [], f"rows for patterns that no longer exist: {stale}"


# -------------------------------------------------------------------- objects ----
@dataclass
class Session:
    sessionid: str


@dataclass
class World:
    """alice's (and bob's) objects, every identity's credentials, and the markers."""

    ids: dict[str, str]  # placeholder -> value, for the rows' urls
    tokens: dict[str, str | None]
    sessions: dict[str, str | None]  # identity -> sessionid
    csrf: str
    markers: dict[str, set[str]]  # object kind -> every marker it ever held

    def url(self, template: str) -> str:
        return template.format(**self.ids)

    def new_marker(self, kind: str) -> str:
        m = f"mx{kind.replace('_', '')}{uuid.uuid4().hex[:16]}"
        self.markers.setdefault(kind, set()).add(m)
        return m


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def login(fleet, username: str) -> str:
    with httpx.Client(base_url=fleet.url, timeout=30) as c:
        c.get("/login/").raise_for_status()
        res = c.post(
            "/login/",
            data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": c.cookies["csrftoken"]},
            headers={"Origin": fleet.url},
        )
        assert res.status_code == 302, res.text[:300]
        return c.cookies["sessionid"]


def logged_out_session(fleet) -> str:
    sid = login(fleet, "alice")
    with httpx.Client(base_url=fleet.url, timeout=30) as c:
        csrf = c.get("/login/").cookies["csrftoken"]
        c.post(
            "/logout/",
            cookies={"sessionid": sid, "csrftoken": csrf},
            headers={"Origin": fleet.url, "X-CSRFToken": csrf},
        )
        assert c.get("/api/auth/me/", cookies={"sessionid": sid}).status_code == 401
    return sid


def wait_report(fleet, tok: str, task_id: str) -> dict:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        r = httpx.get(f"{fleet.url}/api/reports/{task_id}/", headers=bearer(tok), timeout=10).json()
        if r["status"] in ("completed", "failed"):
            assert r["status"] == "completed", r
            return r
        time.sleep(0.3)
    raise AssertionError(f"report {task_id} did not finish")


def say_in_room(fleet, tok: str, room: str, text: str) -> None:
    from websockets.sync.client import connect

    with connect(f"{fleet.ws_url}/ws/chat/{room}/", additional_headers=bearer(tok), open_timeout=10) as ws:
        ws.send(json.dumps({"type": "chat_message", "message": text, "client_id": uuid.uuid4().hex}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            f = json.loads(ws.recv(timeout=10))
            if f.get("type") == "chat_message" and f.get("message") == text:
                return
    raise AssertionError("the chat message was not echoed")


@pytest.fixture(scope="module")
def world(fleet, tokens, shop) -> World:
    api = httpx.Client(base_url=fleet.url, timeout=30)
    me = {k: api.get("/api/auth/me/", headers=bearer(tokens[USERNAMES[k]])).json() for k in ("alice", "bob")}
    ids = {"alice_id": str(me["alice"]["id"]), "bob_id": str(me["bob"]["id"])}
    w = World(ids, {}, {}, "", {})

    def post(who: str, path: str, body: dict, status: int = 201) -> dict:
        res = api.post(path, json=body, headers=bearer(tokens[USERNAMES[who]]))
        assert res.status_code == status, (path, res.status_code, res.text[:300])
        return res.json()

    for who in ("alice", "bob"):
        kind = "doc" if who == "alice" else "bob_doc"
        doc = post(who, "/api/collab/documents/", {"title": f"{who}'s private", "content": w.new_marker(kind)})
        ids[f"{who}_doc"] = str(doc["id"])
        room = post(who, "/api/chat/rooms/", {"name": f"matrix {who} {uuid.uuid4().hex[:8]}"})
        ids[f"{who}_room"] = room["slug"]
        okind = "order" if who == "alice" else "bob_order"
        item = {"name": w.new_marker(okind), "quantity": 1, "price": "2.50"}
        post(who, "/api/orders/", {"total": "2.50", "items": [item]})
    say_in_room(fleet, tokens["alice"], ids["alice_room"], w.new_marker("room"))
    note = post("staff", "/api/notifications/", {"user": "alice", "title": w.new_marker("notification")})
    ids["alice_notification"] = str(note["id"])
    report = post("alice", "/api/reports/", {"type": "chat_transcript", "room": ids["alice_room"]}, status=202)
    ids["alice_report"] = report["task_id"]
    w.markers["report"] = {report["task_id"]}
    wait_report(fleet, tokens["alice"], report["task_id"])

    claims = jwt.decode(tokens["alice"], options={"verify_signature": False})
    with mock.patch.dict(os.environ, fleet.settings()):  # the fleet's signing key
        expired = tokens_issue_expired(claims)
    w.tokens = {
        "alice": tokens["alice"],
        "bob": tokens["bob"],
        "staff": tokens["admin"],
        # A shop user first seen here: the matrix's first request makes them a local user.
        "shop": shop.hs256(f"matrix-{uuid.uuid4().hex[:8]}", f"matrix shop {uuid.uuid4().hex[:8]}", ttl=7200),
        "none": None,
        "expired": expired,
        "bad_signature": jwt.encode(claims, "not-the-fleet-key-" + "x" * 32, algorithm="HS256"),
    }
    w.sessions = {
        "alice": login(fleet, "alice"),
        "bob": login(fleet, "bob"),
        "staff": login(fleet, "admin"),
        "shop": None,
        "none": None,
        "expired": logged_out_session(fleet),
        "bad_signature": "forged" + uuid.uuid4().hex[:26],
    }
    w.csrf = api.get("/login/").cookies["csrftoken"]
    api.close()
    return w


def tokens_issue_expired(claims: dict) -> str:
    identity = jwt_tokens.Identity(int(claims["sub"]), claims["name"], bool(claims.get("staff")))
    return jwt_tokens.issue(identity, ttl=60, now=time.time() - 7200)


# ------------------------------------------------------------------- judging ----
def pdf_text(body: bytes) -> bytes:
    """A PDF's bytes with its page streams decoded (reportlab writes them ASCII85 and
    Flate encoded), so the text drawn on a page can be searched."""
    parts = [body]
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", body, re.S):
        data = m.group(1).strip()
        try:
            if data.endswith(b"~>"):
                data = base64.a85decode(data[:-2])
            parts.append(zlib.decompress(data))
        except (ValueError, zlib.error):
            pass
    return b"\n".join(parts)


def shown(world: World, payload: bytes) -> set[str]:
    """Which object kinds' markers are in `payload`."""
    return {kind for kind, ms in world.markers.items() if any(m.encode() in payload for m in ms)}


def matches(expected, got) -> bool:
    return got in expected if isinstance(expected, frozenset) else got == expected


def success(outcome) -> bool:
    return outcome == OPEN or (isinstance(outcome, int) and outcome < 400 and outcome != 302)


def refuses(expected) -> bool:
    """The table refuses here: no success among the right outcomes."""
    return not any(success(o) for o in (expected if isinstance(expected, frozenset) else {expected}))


@dataclass
class Cell:
    what: str  # the method and url, or the socket's row
    identity: str
    carrier: str
    expected: object
    got: object
    problem: str = ""  # "" fine; else "leak: ..." or "wrong: ..."


def report(cells: list[Cell]) -> str:
    """The wrong cells, one line per (what, expected, got, problem) with who and how."""
    bad = [c for c in cells if c.problem]
    leaks = sum(1 for c in bad if c.problem.startswith("leak"))
    groups: dict[tuple, list[str]] = {}
    for c in bad:
        groups.setdefault((c.what, str(c.expected), str(c.got), c.problem), []).append(f"{c.identity}/{c.carrier}")
    lines = [f"{len(bad)} of {len(cells)} cells wrong, {leaks} of them leaks:"]
    for (what, expected, got, problem), who in groups.items():
        lines.append(f"  {what}: expected {expected}, got {got}  {problem}  [{' '.join(who)}]")
    return "\n".join(lines)


# ----------------------------------------------------------------------- HTTP ----
def http_expected(row: HttpRow, method: str, identity: str, carrier: str):
    if row.csrf and method not in SAFE and carrier != "cookie":
        return 403  # no CSRF token, or a foreign Origin: before anything else
    if method not in row.methods:
        return 405
    return row.methods[method][carried(identity, carrier, row.takes)]


def http_body(world: World, row: HttpRow, method: str, carrier: str) -> dict:
    """httpx keyword arguments for the body of `method` on `row`."""
    if method not in ("POST", "PUT", "PATCH"):
        return {}
    body = row.body.get("POST", {})
    if body == "login_form":
        # A user that does not exist, another each time: a per-username throttle locks out nobody.
        form = {"username": f"matrix-nobody-{uuid.uuid4().hex[:8]}", "password": "wrong"}
        if carrier.startswith("cookie"):
            form["csrfmiddlewaretoken"] = world.csrf
        return {"data": form}
    if body == "new_room":
        return {"json": {"name": f"matrix room {uuid.uuid4().hex[:12]}"}}
    if body == "chat_report":
        return {"json": {"type": "chat_transcript", "room": world.ids["alice_room"]}}
    return {"json": body}


def http_request(world: World, fleet, row: HttpRow, method: str, identity: str, carrier: str, session=None) -> dict:
    url = fleet.url + world.url(row.url)
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    tok = world.tokens[identity]
    if carrier == "header" and tok:
        headers = bearer(tok)
    elif carrier == "query" and tok:
        url += ("&" if "?" in url else "?") + f"token={tok}"
    elif carrier.startswith("cookie"):
        sid = session if session is not None else world.sessions[identity]
        cookies = {"csrftoken": world.csrf, **({"sessionid": sid} if sid else {})}
        headers = {"X-CSRFToken": world.csrf, "Origin": fleet.url if carrier == "cookie" else FOREIGN_ORIGIN}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return {"method": method, "url": url, "headers": headers, **http_body(world, row, method, carrier)}


def judge_http(world: World, row: HttpRow, method, identity, carrier, res: httpx.Response) -> Cell:
    expected = http_expected(row, method, identity, carrier)
    got: object = res.status_code
    if res.status_code == 302 and res.headers.get("location", "").startswith("/login/"):
        got = LOGIN
    cell = Cell(f"{method} {row.url}", identity, carrier, expected, got)
    body = res.content
    if res.headers.get("content-type", "").startswith("application/pdf"):
        body = pdf_text(body)
    effective = carried(identity, carrier, row.takes)
    seen = shown(world, body) - SEES[effective]
    acao = res.headers.get("access-control-allow-origin")
    credentials = res.headers.get("access-control-allow-credentials", "").lower() == "true"
    if not matches(expected, got):
        # Let in where this identity may do nothing with this row: a leak. (A page
        # answering a wrong method as it answers GET is wrong, not a leak.)
        allowed_here = any(success(row.methods[m][effective]) for m in row.methods)
        cell.problem = "leak: let in" if success(got) and refuses(expected) and not allowed_here else "wrong answer"
    if seen:
        cell.problem = f"leak: shows {sorted(seen)}"
    elif carrier == "cookie_foreign" and (acao == FOREIGN_ORIGIN or (acao == "*" and credentials)):
        cell.problem = f"leak: CORS lets the foreign Origin read it ({acao})"
    elif not cell.problem and effective == "alice" and method == "GET" and got == 200:
        missing = set(row.shows) - shown(world, body)
        if missing:
            cell.problem = f"wrong: alice's answer lacks her {sorted(missing)} (the check is blind)"
    return cell


async def run_http_row(world: World, fleet, row: HttpRow) -> list[Cell]:
    cells: list[Cell] = []
    async with httpx.AsyncClient(timeout=30, follow_redirects=False) as client:
        if row.logs_out:
            return await run_logout_row(world, fleet, row, client)
        gate = asyncio.Semaphore(16)

        async def one(method, identity, carrier):
            async with gate:
                res = await client.request(**http_request(world, fleet, row, method, identity, carrier))
            cells.append(judge_http(world, row, method, identity, carrier, res))

        await asyncio.gather(*(one(m, i, c) for m in METHODS for i in IDENTITIES for c in HTTP_CARRIERS))
    return cells


async def run_logout_row(world: World, fleet, row: HttpRow, client: httpx.AsyncClient) -> list[Cell]:
    """Logging out ends a session: each signed-in identity gets a throwaway one, and its
    requests go one by one, the one the table lets log out last; that it did is checked."""
    fresh = {i: await asyncio.to_thread(login, fleet, USERNAMES[i]) for i in ("alice", "bob", "staff")}
    order = [(m, c) for m in METHODS for c in HTTP_CARRIERS if (m, c) != ("POST", "cookie")] + [("POST", "cookie")]
    cells = []
    for identity in IDENTITIES:
        for method, carrier in order:
            req = http_request(world, fleet, row, method, identity, carrier, session=fresh.get(identity))
            res = await client.request(**req)
            cells.append(judge_http(world, row, method, identity, carrier, res))
        if identity in fresh:
            me = await client.get(f"{fleet.url}/api/auth/me/", headers={"Cookie": f"sessionid={fresh[identity]}"})
            cell = Cell("GET /api/auth/me/ after POST /logout/", identity, "cookie", 401, me.status_code)
            if me.status_code != 401:
                cell.problem = "wrong: still logged in"
            cells.append(cell)
    return cells


@pytest.mark.parametrize("row", HTTP_ROWS, ids=[f"{r.url}" for r in HTTP_ROWS])
async def test_http_matrix(fleet, world, row):
    cells = await run_http_row(world, fleet, row)
    assert not [c for c in cells if c.problem], report(cells)


def test_a_users_orders_summary_lists_only_their_orders(fleet, world):
    """Issue 16 item 2: a report runs with its requester's rights. alice's orders_summary
    is refused (403) or covers her orders only: bob's, with his username, are not in it."""
    tok = world.tokens["alice"]
    res = httpx.post(f"{fleet.url}/api/reports/", json={"type": "orders_summary"}, headers=bearer(tok), timeout=30)
    if res.status_code == 403:
        return
    assert res.status_code == 202, res.text[:300]
    task_id = res.json()["task_id"]
    wait_report(fleet, tok, task_id)
    pdf = httpx.get(f"{fleet.url}/api/reports/{task_id}/download/", headers=bearer(tok), timeout=30)
    assert pdf.status_code == 200
    text = pdf_text(pdf.content)
    assert b"(alice)" in text  # the user column is read at all
    others = [name for name in ("bob", "admin") if f"({name})".encode() in text]
    assert others == [], f"alice's orders summary lists the orders of {others}"


# ------------------------------------------------------------------ WebSocket ----
@dataclass
class Sock:
    row: WsRow
    identity: str
    carrier: str
    ws: object = None
    outcome: object = None
    frames: list = None


async def open_sock(world: World, fleet, s: Sock) -> None:
    url = fleet.ws_url + world.url(s.row.url)
    tok, sid = world.tokens[s.identity], world.sessions[s.identity]
    headers: dict[str, str] = {}
    kwargs: dict = {}
    origin = None
    if s.carrier == "header" and tok:
        headers = bearer(tok)
    elif s.carrier == "query" and tok:
        url += ("&" if "?" in url else "?") + f"token={tok}"
    elif s.carrier == "subprotocol":
        origin = fleet.url  # a browser's way: it always sends Origin
        if tok:
            kwargs["subprotocols"] = ["bearer", tok]
    elif s.carrier.startswith("cookie"):
        origin = fleet.url if s.carrier == "cookie" else FOREIGN_ORIGIN
        if sid:
            headers = {"Cookie": f"sessionid={sid}"}
    s.frames = []
    try:
        s.ws = await websockets.connect(
            url, additional_headers=headers, origin=origin, max_size=None, open_timeout=15, **kwargs
        )
    except websockets.InvalidStatus as exc:
        s.outcome = str(exc.response.status_code)


async def listen(s: Sock, until: float) -> None:
    if s.ws is None:
        return
    loop = asyncio.get_running_loop()
    try:
        while (left := until - loop.time()) > 0:
            raw = await asyncio.wait_for(s.ws.recv(), left)
            s.frames.append(raw.encode() if isinstance(raw, str) else raw)
    except TimeoutError:
        s.outcome = OPEN
    except websockets.ConnectionClosed as exc:
        s.outcome = exc.rcvd.code if exc.rcvd else 1006
    if s.outcome is None:
        s.outcome = OPEN


class Actors:
    """alice (and bob) acting on their objects while the matrix's sockets listen."""

    def __init__(self, world: World, fleet):
        self.w, self.fleet = world, fleet
        self.fresh: dict[str, str] = {}

    async def __aenter__(self):
        w, ws_url = self.w, self.fleet.ws_url
        self.chat = await websockets.connect(
            f"{ws_url}/ws/chat/{w.ids['alice_room']}/", additional_headers=bearer(w.tokens["alice"])
        )
        self.docs = {}
        for who in ("alice", "bob"):
            ws = await websockets.connect(
                f"{ws_url}/ws/collab/{w.ids[who + '_doc']}/?protocol=json", additional_headers=bearer(w.tokens[who])
            )
            await expect_frame(ws, "document_content")
            self.docs[who] = ws
        return self

    async def __aexit__(self, *exc):
        for ws in (self.chat, *self.docs.values()):
            await ws.close()

    async def act(self) -> dict:
        """Every kind of change to alice's objects (and bob's document and order); the
        fresh markers by kind, and the id of alice's new notification."""
        w, fresh = self.w, self.fresh
        for kind in ("room", "doc", "bob_doc", "notification", "order", "bob_order"):
            fresh[kind] = w.new_marker(kind)
        await self.chat.send(json.dumps({"type": "chat_message", "message": fresh["room"]}))
        for who, kind in (("alice", "doc"), ("bob", "bob_doc")):
            await self.docs[who].send(
                json.dumps({"type": "edit", "action": "insert", "position": 0, "text": fresh[kind]})
            )
        async with httpx.AsyncClient(base_url=self.fleet.url, timeout=30) as api:

            async def post(who, path, body):
                res = await api.post(path, json=body, headers=bearer(w.tokens[who]))
                assert res.status_code in (201, 202), (path, res.text[:200])
                return res.json()

            note, _, _, report = await asyncio.gather(
                post("staff", "/api/notifications/", {"user": "alice", "title": fresh["notification"]}),
                post("alice", "/api/orders/", order_body(fresh["order"])),
                post("bob", "/api/orders/", order_body(fresh["bob_order"])),
                post("alice", "/api/reports/", {"type": "chat_transcript", "room": w.ids["alice_room"]}),
            )
        fresh["report"] = report["task_id"]
        w.markers["report"].add(report["task_id"])
        return {"notification_id": note["id"]}

    async def still_unread(self, notification_id: int) -> bool:
        async with httpx.AsyncClient(base_url=self.fleet.url, timeout=30) as api:
            res = await api.get("/api/notifications/?unread=true&limit=100", headers=bearer(self.w.tokens["alice"]))
        return notification_id in [n["id"] for n in res.json()["notifications"]]


def order_body(item_name: str) -> dict:
    return {"total": "3.00", "items": [{"name": item_name, "quantity": 1, "price": "3.00"}]}


async def expect_frame(ws, kind: str, timeout: float = 10) -> dict:
    async def wait():
        while True:
            raw = await ws.recv()
            if isinstance(raw, str) and json.loads(raw).get("type") == kind:
                return json.loads(raw)

    return await asyncio.wait_for(wait(), timeout)


def ws_expected(row: WsRow, identity: str, carrier: str):
    return "403" if carrier == "cookie_foreign" else row.outcome[carried(identity, carrier, WS_CARRIERS)]


def judge_ws(world: World, s: Sock, fresh: dict[str, str]) -> Cell:
    expected = ws_expected(s.row, s.identity, s.carrier)
    cell = Cell(f"{s.row.route}/{s.row.variant} {s.row.url}", s.identity, s.carrier, expected, s.outcome)
    payload = b"\n".join(s.frames)
    seen = shown(world, payload)
    unseeable = seen - (SEES[s.identity] & s.row.may_get)
    if not matches(expected, s.outcome):
        cell.problem = "leak: let in" if refuses(expected) and s.outcome == OPEN else "wrong answer"
    if unseeable:
        cell.problem = f"leak: received {sorted(unseeable)}"
    elif not cell.problem and s.outcome == OPEN and matches(expected, OPEN):
        owed = [k for k in s.row.must_get if k in SEES[s.identity]]
        missing = [k for k in owed if fresh[k].encode() not in payload]
        if missing:
            cell.problem = f"wrong: never received the fresh {missing} (the check is blind)"
    return cell


@pytest.mark.parametrize("carrier", WS_CARRIERS)
async def test_ws_matrix(fleet, world, carrier):
    """One wave: a socket per row and identity over `carrier`, all listening while
    alice acts; bob's and staff's notification sockets try to mark her new one read."""
    socks = [Sock(row, identity, carrier) for row in WS_ROWS for identity in IDENTITIES]
    async with Actors(world, fleet) as actors:
        await asyncio.gather(*(open_sock(world, fleet, s) for s in socks))
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(listen(s, loop.time() + SETTLE_SECONDS) for s in socks if s.ws is not None))
        live = [s for s in socks if s.ws is not None and s.outcome == OPEN]
        for s in live:
            s.outcome = None
        acted = await actors.act()
        attempts = [s for s in live if s.row.attempt == "mark_read" and s.identity != "alice"]
        frame = json.dumps({"type": "mark_read", "notification_id": acted["notification_id"]})
        await asyncio.gather(*(s.ws.send(frame) for s in attempts), return_exceptions=True)
        until = loop.time() + LISTEN_SECONDS
        await asyncio.gather(*(listen(s, until) for s in live))
        await asyncio.gather(*(s.ws.close() for s in socks if s.ws is not None), return_exceptions=True)
        unread = await actors.still_unread(acted["notification_id"])
    cells = [judge_ws(world, s, actors.fresh) for s in socks]
    if attempts:
        cell = Cell("mark_read of alice's notification", "bob+staff", carrier, "still unread", unread)
        cell.problem = "" if unread else "leak: someone else marked alice's notification read"
        cells.append(cell)
    assert not [c for c in cells if c.problem], report(cells)
