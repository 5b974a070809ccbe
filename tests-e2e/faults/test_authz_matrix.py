"""The authorization matrix: every WebSocket route and REST endpoint × who is asking ×
which Origin, with the expected HTTP status or close code, as ONE table.

The routes come from the route table (gateway/routes.toml) and the REST endpoints from
every service's URLconf (the services of the launcher, under the route table's /api/
prefixes): a route or endpoint without a row in EXPECT fails
`test_every_route_and_endpoint_has_a_row`, so a new one cannot land unexamined.

Outcomes: "open" (the socket is accepted and stays open), a close code (4401 ...), or
an HTTP status ("403" for a WebSocket refused before the handshake, by Origin).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import httpx
import jwt
import pytest
import websockets
from wsclient import Client

from launcher import ROOT, SERVICES
from switchboard import routes, tokens

WHO = ("none", "expired", "bad_signature", "user", "other_user", "staff")
ORIGINS = ("allowed", "foreign", "none")

# Concrete URLs for route or endpoint templates.
EXAMPLES = {
    "/ws/chat/{room}/": "/ws/chat/lobby/",
    "/ws/tasks/": "/ws/tasks/",
    "api/chat/rooms/<slug:slug>/messages/": "/api/chat/rooms/lobby/messages/",
    # Objects nobody owns: the answer must not depend on whose token asks.
    "/ws/collab/{doc}/": "/ws/collab/999999/",
    "api/collab/documents/<int:doc_id>/": "/api/collab/documents/999999/",
    "api/collab/documents/<int:doc_id>/share/": "/api/collab/documents/999999/share/",
    "api/notifications/<int:notification_id>/read/": "/api/notifications/999999/read/",
    "api/reports/<str:task_id>/": "/api/reports/00000000-0000-4000-8000-000000000000/",
    "api/reports/<str:task_id>/download/": "/api/reports/00000000-0000-4000-8000-000000000000/download/",
}

ANON = ("none", "expired", "bad_signature")
OPEN_TO_USERS = {w: (4401 if w in ANON else "open") for w in WHO}
REST_USERS = {w: (401 if w in ANON else 200) for w in WHO}
REST_STAFF = {w: (401 if w in ANON else 200 if w == "staff" else 403) for w in WHO}
NOT_FOUND = {w: (401 if w in ANON else 404) for w in WHO}
PUBLIC = {w: 200 for w in WHO}

# key -> (method, {who: expected}); Origin never changes a REST answer (bearer tokens,
# no cookies), and a foreign Origin refuses every WebSocket with HTTP 403.
EXPECT: dict[str, tuple[str, dict[str, object]]] = {
    "ws:chat": ("WS", OPEN_TO_USERS),  # rooms are public to signed-in users
    "ws:tasks": ("WS", OPEN_TO_USERS),  # each user joins only tasks.user.<own id>
    "api/auth/token/": ("POST", {w: 401 for w in WHO}),  # wrong password, whoever asks
    "api/auth/session-token/": ("GET", {w: 401 for w in WHO}),  # session cookie only
    "api/auth/me/": ("GET", REST_USERS),
    "api/auth/check-staff/": ("GET", REST_STAFF),
    "api/auth/users/": ("GET", REST_STAFF),
    "api/auth/stats/": ("GET", REST_STAFF),
    "api/chat/rooms/": ("GET", REST_USERS),
    "api/chat/rooms/<slug:slug>/messages/": ("GET", REST_USERS),
    "ws:notifications": ("WS", OPEN_TO_USERS),  # each user joins only their own stream
    "ws:collab": ("WS", {w: (4401 if w in ANON else 4404) for w in WHO}),  # no such document
    "ws:dashboard": ("WS", {w: (4401 if w in ANON else "open" if w == "staff" else 4403) for w in WHO}),
    "api/collab/documents/": ("GET", REST_USERS),
    "api/collab/documents/<int:doc_id>/": ("GET", NOT_FOUND),
    # The empty body is refused before the document is looked up (nothing is revealed).
    "api/collab/documents/<int:doc_id>/share/": ("POST", {w: (401 if w in ANON else 400) for w in WHO}),
    "api/dashboard/alerts/": ("GET", REST_STAFF),
    "api/notifications/": ("GET", REST_USERS),
    "api/notifications/<int:notification_id>/read/": ("POST", NOT_FOUND),
    "api/notifications/read-all/": ("POST", REST_USERS),
    "api/orders/": ("GET", REST_USERS),  # each user's own orders; all of them for staff
    "api/reports/": ("GET", REST_USERS),
    "api/reports/<str:task_id>/": ("GET", NOT_FOUND),
    "api/reports/<str:task_id>/download/": ("GET", NOT_FOUND),
    "api/reports/stats/": ("GET", REST_STAFF),
    # Each service's OpenAPI document (switchboard/openapi.py): public, it holds no data.
    **{
        f"api/{p}/openapi.json": ("GET", PUBLIC)
        for p in ("auth", "chat", "collab", "dashboard", "notifications", "reports")
    },
}


def rest_endpoints(services: set[str] | None = None) -> list[str]:
    """Every URL pattern of every service (or of `services`) under the route table's
    /api/ prefixes."""
    prefixes = [h.prefix.lstrip("/") for h in routes.load().http if h.prefix.startswith("/api/")]
    found: list[str] = []
    for svc in SERVICES:
        if services is not None and svc.name not in services:
            continue
        code = (
            "import django, json; django.setup();"
            "from django.conf import settings; from importlib import import_module;"
            "print(json.dumps([str(p.pattern) for p in import_module(settings.ROOT_URLCONF).urlpatterns]))"
        )
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": svc.settings, "PYTHONPATH": str(ROOT / "services")}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        found += [p for p in json.loads(out.stdout) if any(p.startswith(x) for x in prefixes)]
    return sorted(set(found))


def ws_routes() -> list[str]:
    return [f"ws:{r.name}" for r in routes.load().websocket]


def test_every_route_and_endpoint_has_a_row():
    missing = [k for k in ws_routes() + rest_endpoints() if k not in EXPECT]
    assert missing == [], f"add rows to EXPECT for {missing}"


@pytest.fixture(scope="module")
def who_tokens(fleet, tokens):
    me = httpx.get(f"{fleet.url}/api/auth/me/", headers={"Authorization": f"Bearer {tokens['alice']}"}).json()
    alice = tokens_identity(me)
    valid = jwt.decode(tokens["alice"], options={"verify_signature": False})
    return {
        "none": None,
        "expired": tokens_module_issue(alice, now=time.time() - 7200),
        "bad_signature": jwt.encode(valid, "not-the-key-" + "x" * 32, algorithm="HS256"),
        "user": tokens["alice"],
        "other_user": tokens["bob"],
        "staff": tokens["admin"],
    }


def tokens_identity(me: dict) -> tokens.Identity:
    user = me.get("user", me)
    return tokens.Identity(int(user["id"]), user["username"], bool(user.get("is_staff", False)))


def tokens_module_issue(identity, now):
    return tokens.issue(identity, ttl=60, now=now)


def origin_header(fleet, origin: str) -> str | None:
    return {"allowed": fleet.url, "foreign": "https://evil.example", "none": None}[origin]


def cases():
    for key, (_, by_who) in EXPECT.items():
        for who in WHO:
            for origin in ORIGINS:
                yield pytest.param(key, who, origin, by_who[who], id=f"{key}|{who}|{origin}")


@pytest.mark.parametrize("key,who,origin,expected", list(cases()))
async def test_matrix(fleet, who_tokens, key, who, origin, expected):
    method = EXPECT[key][0]
    tok = who_tokens[who]
    if method == "WS":
        route = next(r for r in routes.load().websocket if f"ws:{r.name}" == key)
        url = fleet.ws_url + EXAMPLES.get(route.path, route.path)
        if origin == "foreign":
            expected = "403"  # refused before the handshake, whoever asks
        try:
            client = await Client.connect(url, tok, origin=origin_header(fleet, origin))
        except websockets.InvalidStatus as exc:
            assert str(exc.response.status_code) == expected
            return
        try:
            # A route that streams (the dashboard ticks) never goes quiet: bound the wait.
            got = await asyncio.wait_for(client.closed_with(timeout=1.5), 2.0)
        except TimeoutError:
            got = "open"
        await client.close()
        assert got == expected
        return
    path = EXAMPLES.get(key, "/" + key)
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    if (o := origin_header(fleet, origin)) is not None:
        headers["Origin"] = o
    if path.endswith("/users/"):
        path += "?username=bob"
    body = ({"username": "alice", "password": "wrong"} if "token" in key else {}) if method == "POST" else None
    res = httpx.request(method, fleet.url + path, headers=headers, json=body, timeout=10)
    assert res.status_code == expected, res.text[:200]
