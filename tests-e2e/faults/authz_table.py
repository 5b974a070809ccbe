"""The authorization matrix's expected outcomes: who may do what to whose object.

Written from the product's rules (README / docs, issue 16), not from the code under
test; test_authz_matrix.py drives every row against a real fleet and compares.

The objects are real and belong to alice (made through the APIs at the start): a collab
document, a notification, a report, an order, a chat room with messages. bob has a
document, a room and an order of his own, so a query that names "the other" object has
something to name, and so an answer to alice that lists bob's data is seen.

Identities: alice (the owner), bob (another user), shop (another user, signed in with a
token the shop's back end minted, issue 18: a user of the shop's own with nothing in
Switchboard, and no session here, since they log in at the shop), staff (admin), and
three anonymous ones that must all be treated as nobody: none, expired (a token past its
exp, or a session that was logged out) and bad_signature (a token signed with another
key, or a forged session id).

Carriers, how the identity travels:
* header          `Authorization: Bearer <token>`
* query           `?token=<token>` (WebSockets only take it: the seed's clients; a REST
                  API reads no token from a URL, which ends up in logs and history)
* subprotocol     WebSocket `["bearer", <token>]` (what a browser can send)
* cookie          the web UI's session cookie, its CSRF token, and an allowed Origin
* cookie_foreign  the same from a foreign Origin (another site's page)

Reading a row: `who(alice=..., bob=..., staff=..., anon=...)` is the outcome for each
identity when the identity reaches the endpoint (its carrier is one the row `takes`);
shop's is bob's (no row names an object of bob's that bob alone may use).
A carrier the row does not take carries nobody: the outcome is `anon`'s, and so is a
session carrier for shop (it has no session).
Rules that hold for every row, so the rows need not repeat them:
* a method a row does not list is 405 for everyone (`takes` notwithstanding);
* `csrf` rows (ws-gateway's views: the web UI's pages and the session-aware auth API;
  the token endpoint alone is exempt, it takes no cookie authority): an unsafe method
  (not GET/HEAD/OPTIONS) without the page's CSRF token, or from a foreign Origin, is
  403 before anything else;
* a WebSocket from a foreign Origin is refused before the handshake (HTTP 403), and a
  session cookie without any Origin is no credential (a non-browser brings a token);
* no answer lets a foreign Origin read it with the user's credentials (no
  Access-Control-Allow-Origin naming it, no `*` with Allow-Credentials);
* `sees`: what of alice's objects each identity may be shown, in any answer or frame
  (chat rooms are public to signed-in users; staff sees every order); nobody but bob
  may be shown bob's document or order.

HTTP outcomes are statuses ("login" is a redirect to the login page). WebSocket outcomes
are "open" (accepted and still open), a close code, or "403" (refused before the
handshake). A set means any of them is right (said why where it is used).
"""

from __future__ import annotations

from dataclasses import dataclass, field

IDENTITIES = ("alice", "bob", "shop", "staff", "none", "expired", "bad_signature")
ANON = ("none", "expired", "bad_signature")
SESSIONLESS = ("shop",)  # signed in by a token only: a session carrier carries nobody
HTTP_CARRIERS = ("header", "query", "cookie", "cookie_foreign")
WS_CARRIERS = ("header", "query", "subprotocol", "cookie", "cookie_foreign")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SAFE = ("GET", "HEAD", "OPTIONS")

BEARER = frozenset({"header"})
SESSION = frozenset({"cookie", "cookie_foreign"})
BEARER_OR_SESSION = BEARER | SESSION
NOBODY = frozenset()

LOGIN = "login"  # 302 to /login/?next=...
OPEN = "open"

# What of alice's objects each identity may be shown (answers and frames).
ALICE_OBJECTS = ("doc", "notification", "report", "order", "room")
SEES = {
    "alice": frozenset(ALICE_OBJECTS),
    "bob": frozenset({"room", "bob_doc", "bob_order"}),
    "shop": frozenset({"room"}),
    "staff": frozenset({"order", "room", "bob_order"}),
    **{a: frozenset() for a in ANON},
}


def who(*, alice, bob, staff, anon) -> dict[str, object]:
    return {"alice": alice, "bob": bob, "shop": bob, "staff": staff, **{a: anon for a in ANON}}


def carried(identity: str, carrier: str, takes: frozenset) -> str:
    """Who reaches the endpoint: `identity`, or "none" when its carrier carries nobody."""
    if carrier not in takes or (carrier in SESSION and identity in SESSIONLESS):
        return "none"
    return identity


def users(outcome, anon) -> dict[str, object]:
    """Any signed-in user alike."""
    return who(alice=outcome, bob=outcome, staff=outcome, anon=anon)


def staff_only(ok, anon=401) -> dict[str, object]:
    return who(alice=403, bob=403, staff=ok, anon=anon)


@dataclass(frozen=True)
class HttpRow:
    """`pattern`: the URLconf pattern (or a routes.toml prefix) the row covers; `url` a
    concrete path with {placeholders} for the objects; methods -> who -> outcome."""

    pattern: str
    url: str
    methods: dict[str, dict[str, object]]
    takes: frozenset = BEARER
    csrf: bool = False
    # A body per method (a dict, or a name of a body test_authz_matrix makes fresh).
    body: dict[str, object] = field(default_factory=dict)
    # Of alice's objects, which must be in her 2xx answer (the check sees them at all).
    shows: tuple[str, ...] = ()
    # Requests of this row change who is logged in: run alone, on throwaway sessions.
    logs_out: bool = False


@dataclass(frozen=True)
class WsRow:
    """One socket per identity and carrier. `url` names objects by placeholder;
    `must_get`: fresh markers alice's socket must receive while she acts (so the
    check that bob receives none of them is not vacuous); `may_get`: which of the
    `sees` objects a socket of this row may receive at all (it is on that object)."""

    route: str
    variant: str
    url: str
    outcome: dict[str, object]
    may_get: frozenset
    must_get: tuple[str, ...] = ()
    # A frame this row's non-owner sockets send while alice acts (an attempt on her object).
    attempt: str = ""


A_DOC, A_NOTE, A_REPORT = "{alice_doc}", "{alice_notification}", "{alice_report}"
OWNER_ONLY_404 = who(alice=200, bob=404, staff=404, anon=401)  # someone else's = none at all

HTTP_ROWS: tuple[HttpRow, ...] = (
    # ---------------------------------------------------------------- ws-gateway: auth
    HttpRow("api/auth/openapi.json", "/api/auth/openapi.json", {"GET": users(200, 200)}, takes=NOBODY, csrf=True),
    # Right credentials in the body: a token for whoever asks, whatever else is sent.
    HttpRow(
        "api/auth/token/",
        "/api/auth/token/",
        {"POST": users(200, 200)},
        takes=NOBODY,
        body={"POST": {"username": "alice", "password": "switchboard"}},
    ),
    HttpRow("api/auth/session-token/", "/api/auth/session-token/", {"GET": users(200, 401)}, takes=SESSION, csrf=True),
    HttpRow("api/auth/me/", "/api/auth/me/", {"GET": users(200, 401)}, takes=BEARER_OR_SESSION, csrf=True),
    HttpRow(
        "api/auth/check-staff/", "/api/auth/check-staff/", {"GET": staff_only(200)}, takes=BEARER_OR_SESSION, csrf=True
    ),
    HttpRow(
        "api/auth/users/",
        "/api/auth/users/?username=alice",
        {"GET": staff_only(200)},
        takes=BEARER_OR_SESSION,
        csrf=True,
    ),
    HttpRow("api/auth/stats/", "/api/auth/stats/", {"GET": staff_only(200)}, takes=BEARER_OR_SESSION, csrf=True),
    # Shop subjects are mapped by services alone (a service token): no user, staff included.
    HttpRow(
        "api/auth/subjects/",
        "/api/auth/subjects/",
        {"POST": who(alice=403, bob=403, staff=403, anon=401)},
        body={"POST": {"sub": "authz-shop-user"}},
    ),
    # The shop's API keys: staff manage them with a bearer token (the key is shown once).
    HttpRow(
        "api/auth/api-keys/",
        "/api/auth/api-keys/",
        {"GET": staff_only(200), "POST": staff_only(201)},
        body={"POST": {"name": "matrix key", "scopes": ["notify"]}},
    ),
    # No such key: staff are told so, anyone else is refused before the lookup.
    HttpRow(
        "api/auth/api-keys/<str:key_id>/revoke/",
        "/api/auth/api-keys/0000000000000000/revoke/",
        {"POST": staff_only(404)},
    ),
    # ---------------------------------------------------------------- ws-gateway: pages
    # A page is read with GET/HEAD; only the login form is posted (to log in, wrong
    # password here: the form again), and logout is by POST only (issue 16).
    HttpRow(
        "login/",
        "/login/",
        {"GET": users(200, 200), "HEAD": users(200, 200), "POST": users(200, 200)},
        takes=NOBODY,
        csrf=True,
        body={"POST": "login_form"},
    ),
    HttpRow("logout/", "/logout/", {"POST": users(LOGIN, LOGIN)}, takes=SESSION, csrf=True, logs_out=True, body={}),
    *(
        HttpRow(pattern, url, {"GET": users(200, LOGIN), "HEAD": users(200, LOGIN)}, takes=SESSION, csrf=True)
        for pattern, url in (
            ("", "/"),
            ("chat/<slug:room>/", "/chat/{alice_room}/"),
            ("collab/", "/collab/"),
            # The editor page is a shell holding only the id; the socket and the API
            # decide access, so the page is every signed-in user's (it shows nothing).
            ("collab/<int:doc>/", "/collab/" + A_DOC + "/"),
            ("reports/", "/reports/"),
        )
    ),
    HttpRow(
        "dashboard/",
        "/dashboard/",
        {"GET": staff_only(200, LOGIN), "HEAD": staff_only(200, LOGIN)},
        takes=SESSION,
        csrf=True,
    ),
    HttpRow(
        "^static/(?P<path>.*)$",
        "/static/ws_gateway/app.css",
        {"GET": users(200, 200), "HEAD": users(200, 200)},
        takes=NOBODY,
        csrf=True,
    ),
    # ---------------------------------------------------------------------------- chat
    HttpRow("api/chat/openapi.json", "/api/chat/openapi.json", {"GET": users(200, 200)}, takes=NOBODY),
    HttpRow(
        "api/chat/rooms/",
        "/api/chat/rooms/",
        {"GET": users(200, 401), "POST": users(201, 401)},
        body={"POST": "new_room"},
    ),
    # Rooms are public to signed-in users: bob reads alice's room.
    HttpRow(
        "api/chat/rooms/<slug:slug>/messages/",
        "/api/chat/rooms/{alice_room}/messages/",
        {"GET": users(200, 401)},
        shows=("room",),
    ),
    # The server API: an API key only (no user's token, staff's neither).
    HttpRow(
        "api/chat/rooms/<slug:slug>/system-messages/",
        "/api/chat/rooms/{alice_room}/system-messages/",
        {"POST": users(401, 401)},
        body={"POST": {"message": "matrix: not sent"}},
    ),
    # -------------------------------------------------------------------------- collab
    HttpRow("api/collab/openapi.json", "/api/collab/openapi.json", {"GET": users(200, 200)}, takes=NOBODY),
    HttpRow(
        "api/collab/documents/",
        "/api/collab/documents/",
        {"GET": users(200, 401), "POST": users(201, 401)},
        body={"POST": {"title": "matrix: a new document", "content": "nothing secret"}},
    ),
    # Not shared with bob nor staff: 403 (the document exists; ids are sequential anyway).
    HttpRow(
        "api/collab/documents/<int:doc_id>/",
        "/api/collab/documents/" + A_DOC + "/",
        {"GET": who(alice=200, bob=403, staff=403, anon=401)},
        shows=("doc",),
    ),
    # Only the owner shares ("none" here: bob keeps no access).
    HttpRow(
        "api/collab/documents/<int:doc_id>/share/",
        "/api/collab/documents/" + A_DOC + "/share/",
        {"POST": who(alice=200, bob=403, staff=403, anon=401)},
        body={"POST": {"username": "bob", "role": "none"}},
    ),
    # ----------------------------------------------------------------------- dashboard
    HttpRow("api/dashboard/openapi.json", "/api/dashboard/openapi.json", {"GET": users(200, 200)}, takes=NOBODY),
    # Each user's own orders; staff sees every order.
    HttpRow(
        "api/orders/",
        "/api/orders/",
        {"GET": users(200, 401), "POST": users(201, 401)},
        body={"POST": {"total": "1.00", "items": [{"name": "matrix item", "quantity": 1, "price": "1.00"}]}},
        shows=("order",),
    ),
    HttpRow(
        "api/dashboard/alerts/",
        "/api/dashboard/alerts/",
        {"GET": staff_only(200), "POST": staff_only(200)},
        body={"POST": {"level": "info", "message": "matrix alert"}},
    ),
    # The server API: an API key only (no user's token, staff's neither).
    HttpRow(
        "api/dashboard/events/",
        "/api/dashboard/events/",
        {"POST": users(401, 401)},
        body={"POST": {"type": "alert", "message": "matrix: not sent"}},
    ),
    # -------------------------------------------------------------------- notification
    HttpRow(
        "api/notifications/openapi.json", "/api/notifications/openapi.json", {"GET": users(200, 200)}, takes=NOBODY
    ),
    # Each user reads their own; only staff creates one (for anyone).
    HttpRow(
        "api/notifications/",
        "/api/notifications/",
        {"GET": users(200, 401), "POST": staff_only(201)},
        body={"POST": {"user": "alice", "title": "matrix: a notification"}},
        shows=("notification",),
    ),
    HttpRow("api/notifications/read-all/", "/api/notifications/read-all/", {"POST": users(200, 401)}),
    # The server API (the shop's back end): an API key only; no user's token, staff's neither.
    HttpRow(
        "api/notifications/send/",
        "/api/notifications/send/",
        {"POST": users(401, 401)},
        body={"POST": {"user_id": 1, "title": "matrix: not sent"}},
    ),
    # Someone else's notification answers exactly like a missing one.
    HttpRow(
        "api/notifications/<int:notification_id>/read/",
        "/api/notifications/" + A_NOTE + "/read/",
        {"POST": OWNER_ONLY_404},
    ),
    # ---------------------------------------------------------------------- reports
    HttpRow("api/reports/openapi.json", "/api/reports/openapi.json", {"GET": users(200, 200)}, takes=NOBODY),
    HttpRow(
        "api/reports/",
        "/api/reports/",
        {"GET": users(200, 401), "POST": users(202, 401)},
        body={"POST": "chat_report"},
        shows=("report",),
    ),
    HttpRow("api/reports/stats/", "/api/reports/stats/", {"GET": staff_only(200)}),
    # The server API: an API key only.
    HttpRow(
        "api/reports/task-updates/",
        "/api/reports/task-updates/",
        {"POST": users(401, 401)},
        body={"POST": {"user_id": 1, "task_id": "matrix", "status": "started"}},
    ),
    # A report is its owner's only (staff too gets 404: a report holds its owner's data).
    HttpRow("api/reports/<str:task_id>/", "/api/reports/" + A_REPORT + "/", {"GET": OWNER_ONLY_404}, shows=("report",)),
    HttpRow(
        "api/reports/<str:task_id>/download/",
        "/api/reports/" + A_REPORT + "/download/",
        {"GET": OWNER_ONLY_404},
        shows=("room",),  # a chat transcript: alice's room's messages
    ),
    # ------------------------------------------------ routes.toml prefixes outside Django
    # /ws/ over plain HTTP (no Upgrade): no page there, for anyone, any method.
    HttpRow("/ws/", "/ws/chat/{alice_room}/", {m: users(404, 404) for m in METHODS}, takes=NOBODY),
    # Flower: nginx asks check-staff first (bearer or session), whatever the method;
    # only then does Flower answer: GET, and OPTIONS as a CORS preflight (204, no
    # credentials allowed, so a foreign page still reads nothing with the cookie).
    HttpRow(
        "/flower/",
        "/flower/",
        {m: staff_only({"GET": 200, "OPTIONS": 204}.get(m, 405)) for m in METHODS},
        takes=BEARER_OR_SESSION,
    ),
    # Its metrics and health check are internal (routes.toml): refused by nginx to
    # everyone, staff too, before any check; Prometheus reads Flower's port directly.
    *(
        HttpRow("/flower/", url, {m: users(404, 404) for m in METHODS}, takes=NOBODY)
        for url in ("/flower/metrics", "/flower/healthcheck")
    ),
)

# Query parameters are never the route's identity: a query naming a path parameter is
# refused with 4400 (issue 16), for anyone signed in. Others (user=) name nothing the
# gateway uses; either ignored (open, own stream only) or refused as unknown (4400).
REFUSED = who(alice=4400, bob=4400, staff=4400, anon=4401)
IGNORED_OR_REFUSED = users(frozenset({OPEN, 4400}), 4401)
NOTHING = frozenset()
# What a user is notified of: a notification, and that their order or report is done.
NOTIFIED = frozenset({"notification", "order", "report"})

WS_ROWS: tuple[WsRow, ...] = (
    # Rooms are public to signed-in users.
    WsRow("chat", "plain", "/ws/chat/{alice_room}/", users(OPEN, 4401), frozenset({"room"}), must_get=("room",)),
    WsRow("chat", "query_names_other_room", "/ws/chat/{bob_room}/?room={alice_room}", REFUSED, NOTHING),
    WsRow(
        "collab",
        "json",
        "/ws/collab/" + A_DOC + "/?protocol=json",
        who(alice=OPEN, bob=4403, staff=4403, anon=4401),
        frozenset({"doc"}),
        must_get=("doc",),
    ),
    # Issue 16 item 1: the path is alice's document, the query names bob's own.
    WsRow(
        "collab", "json_query_names_own_doc", "/ws/collab/" + A_DOC + "/?doc={bob_doc}&protocol=json", REFUSED, NOTHING
    ),
    WsRow(
        "collab",
        "json_query_names_alice_doc",
        "/ws/collab/{bob_doc}/?doc=" + A_DOC + "&protocol=json",
        REFUSED,
        NOTHING,
    ),
    WsRow(
        "collab",
        "yjs",
        "/ws/collab/" + A_DOC + "/",
        who(alice=OPEN, bob=4403, staff=4403, anon=4401),
        frozenset({"doc"}),
        must_get=("doc",),
    ),
    WsRow("collab", "yjs_query_names_own_doc", "/ws/collab/" + A_DOC + "/?doc={bob_doc}", REFUSED, NOTHING),
    # Each user's own task progress only.
    WsRow("tasks", "plain", "/ws/tasks/", users(OPEN, 4401), frozenset({"report"}), must_get=("report",)),
    WsRow("tasks", "query_names_alice", "/ws/tasks/?user={alice_id}", IGNORED_OR_REFUSED, frozenset({"report"})),
    # Each user's own notifications; bob tries to mark alice's new one read.
    WsRow(
        "notifications",
        "plain",
        "/ws/notifications/",
        users(OPEN, 4401),
        NOTIFIED,
        must_get=("notification",),
        attempt="mark_read",
    ),
    WsRow(
        "notifications",
        "query_names_alice",
        "/ws/notifications/?user={alice_id}",
        IGNORED_OR_REFUSED,
        NOTIFIED,
        attempt="mark_read",
    ),
    # Staff only; staff sees every new order.
    WsRow(
        "dashboard",
        "plain",
        "/ws/dashboard/",
        who(alice=4403, bob=4403, staff=OPEN, anon=4401),
        frozenset({"order", "bob_order"}),
        must_get=("order", "bob_order"),
    ),
)
