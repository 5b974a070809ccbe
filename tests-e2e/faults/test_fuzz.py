"""Bad input on every WebSocket route: hypothesis generates frames (bad JSON, wrong
types, huge numbers, deep nesting, binary, large, unknown types, valid shapes carrying
other users' names and ids) and sends them through nginx.

What must hold, as a user or operator sees it: every bad frame is answered with an
error frame and the socket stays open; a valid frame is accepted, and whatever user
fields it carries, the echo names its real author; no process crashed (supervisord's
pids are unchanged); another client on the same route got nothing it should not.

The routes come from the route table, so a new route is fuzzed with the generic frames
as soon as it lands; ROUTE_FRAMES adds its valid shapes. FUZZ_EXAMPLES sets the count
per route: small in `make test`, 10,000 in `make faults` (which raises the rate limits
for its fleet so the frames reach the parser rather than the limiter).
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from switchboard import routes
from switchboard.config import env_float

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
PACE = 1 / env_float("RATE_CONN_PER_SECOND")
PATHS = {"/ws/chat/{room}/": "/ws/chat/lobby/"}
# The client library's thread keeps reading into an unbounded queue while the test is
# busy elsewhere, so neither socket looks like a slow client to the gateway (4008), and
# no client-side keepalive misfires during 10,000 examples.
QUIET = {"max_queue": None, "ping_interval": None}

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=50),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


def deep(n: int) -> str:
    return '{"type": "chat_message", "message": ' + "[" * n + "]" * n + "}"


# Frames no route accepts: each must get exactly one error frame.
bad_frames = st.one_of(
    st.text(max_size=200).filter(lambda t: not _is_json(t)),  # not JSON
    json_value.filter(lambda v: not isinstance(v, dict)).map(json.dumps),  # not an object
    st.dictionaries(st.text(max_size=8), json_value, max_size=5)
    .filter(lambda d: not isinstance(d.get("type"), str))
    .map(json.dumps),  # no string type
    st.builds(
        lambda t, extra: json.dumps({**extra, "type": "zz_" + t}),
        st.text(max_size=20),
        st.dictionaries(st.text(max_size=5), json_leaf, max_size=3),
    ),  # unknown type
    st.integers(min_value=2, max_value=3000).map(deep),  # deep nesting
    st.binary(min_size=1, max_size=300),  # binary on a text route
    st.builds(lambda n: '{"type": "ping", "x": ' + str(n) + "}", st.integers(min_value=10**30, max_value=10**300)).map(
        lambda s: s.replace('"ping"', '"chat_message"')
    ),  # huge numbers
    st.integers(min_value=4001, max_value=20000).map(
        lambda n: json.dumps({"type": "chat_message", "message": "x" * n})
    ),  # too long
)

# Route-specific shapes with wrong field types (bad) and valid shapes (accepted).
ROUTE_BAD = {
    "chat": st.builds(
        lambda v: json.dumps({"type": "chat_message", "message": v}),
        json_value.filter(lambda v: not (isinstance(v, str) and 1 <= len(v) <= 4000)),
    ),
}
ROUTE_FRAMES = {
    # Valid, with fields claiming to be someone else: the echo must still say "alice".
    "chat": st.builds(
        lambda text, who: {
            "type": "chat_message",
            "message": text,
            "client_id": uuid.uuid4().hex,
            "user": who,
            "user_id": 1,
        },
        st.text(min_size=1, max_size=100).filter(str.strip),
        st.sampled_from(["bob", "admin"]),
    ),
}


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def route_url(fleet, route) -> str:
    return fleet.ws_url + PATHS.get(route.path, route.path)


def pids(fleet) -> dict[str, str]:
    return {line.split()[0]: line.split()[3] for line in fleet.ctl("status").splitlines() if "RUNNING" in line}


def recv_json(ws, timeout=5.0) -> dict:
    raw = ws.recv(timeout=timeout)
    return json.loads(raw) if isinstance(raw, str) else {"type": "<binary>"}


def skip_to(ws, pred, timeout=5.0) -> dict:
    while True:
        frame = recv_json(ws, timeout)
        if pred(frame):
            return frame


@pytest.mark.parametrize("route", routes.load().websocket, ids=lambda r: r.name)
def test_fuzzed_frames_get_error_frames_and_disturb_no_one(fleet, tokens, route):
    if "{doc}" in route.path:
        pytest.skip("collab sockets need a document of their own: its bad-input cases are in tests-e2e/test_collab.py")
    before = pids(fleet)
    # A staff-only route is fuzzed by staff (anyone else is refused before any frame).
    fuzzer, witness = ("admin", "admin") if route.staff_only else ("alice", "bob")
    headers = {"Authorization": f"Bearer {tokens[fuzzer]}"}
    with (
        connect(
            route_url(fleet, route),
            additional_headers={"Authorization": f"Bearer {tokens[witness]}"},
            origin=fleet.url,
            **QUIET,
        ) as bystander,
        connect(route_url(fleet, route), additional_headers=headers, origin=fleet.url, max_size=None, **QUIET) as ws,
    ):
        bad = bad_frames | ROUTE_BAD[route.name] if route.name in ROUTE_BAD else bad_frames
        good = ROUTE_FRAMES.get(route.name, st.just({"type": "ping"}))
        seen = {"bad": 0, "good": 0}

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(st.one_of(bad.map(lambda f: ("bad", f)), good.map(lambda f: ("good", f))))
        def one(case):
            kind, f = case
            seen[kind] += 1
            time.sleep(PACE)  # stay under the per-connection rate: fuzz the parser, not the limiter
            ws.send(json.dumps(f) if isinstance(f, dict) else f)
            if kind == "bad":
                answer = skip_to(ws, lambda fr: fr["type"] == "error")
                assert answer["code"] != "internal_error", answer
            elif f["type"] == "ping":
                skip_to(ws, lambda fr: fr["type"] in ("pong", "error"))
            else:
                echo = skip_to(ws, lambda fr: fr.get("client_id") == f["client_id"] or fr["type"] == "error")
                if echo["type"] != "error":  # rate_limited is an error frame too
                    assert echo["user"] == fuzzer, echo

        one()
        # The bystander was not disturbed: still open, and no error frames.
        bystander.send(json.dumps({"type": "ping"}))
        got = []
        while not got or got[-1]["type"] != "pong":
            got.append(recv_json(bystander))
        assert [f for f in got if f["type"] == "error"] == []
    assert pids(fleet) == before, "a process crashed or restarted"
    assert seen["bad"] > 0
