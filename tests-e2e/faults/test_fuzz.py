"""Bad input on every WebSocket route: hypothesis generates frames (bad JSON, wrong
types, huge numbers, deep nesting, binary, large, unknown types, valid shapes carrying
other users' names and ids) and sends them through nginx.

What must hold, as a user or operator sees it: every bad frame is answered with an
error frame and the socket still works: the route's probe (PROBES: a chat message, a
collab edit, mark_all_read, a ping) sent right after it gets its success answer, not
an error and not rate_limited, every time (valid-after-bad = bad); every route's real
commands are fuzzed too (typing, cursor moves, mark_read with other users'
notification ids, which must stay unread); a valid frame is accepted, and whatever user
fields it carries, the echo names its real author; no process crashed (supervisord's
pids are unchanged, and conftest.py fails the run on any traceback in a fleet log);
another client on the same route got nothing it should not.

The routes come from the route table, so a new route is fuzzed with the generic frames
as soon as it lands; ROUTE_FRAMES adds its valid shapes. collab is fuzzed on a document
of its own (alice's, shared with bob as editor) in both of its protocols: the JSON one
by the generic test, and the binary Yjs one by test_fuzzed_yjs_frames: garbage binary
is answered with the documented close 4400 (or is harmless), a valid edit is kept, the
other editor is never closed nor sent anything a Yjs client would choke on, and every
editor's document converges on the stored one. FUZZ_EXAMPLES sets the count
per route: small in `make test`, 10,000 in `make faults` (which raises the rate limits
for its fleet so the frames reach the parser rather than the limiter).
"""

from __future__ import annotations

import json
import os
import time
import uuid

import httpx
import pytest
from collabhelpers import new_document, server_document
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from collab import ydoc
from switchboard import routes
from switchboard.closecodes import CloseCode
from switchboard.config import env_float
from switchboard.protocol import COLLAB_POSITION_MAX, FrameError, parse_client_frame
from switchboard.ratelimit import connection_rate

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
PATHS = {"/ws/chat/{room}/": "/ws/chat/lobby/", "/ws/collab/{doc}/": "/ws/collab/{doc}/?protocol=json"}
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

# A binary frame on collab's JSON protocol is closed with 4400 (a JSON client never
# sends one); binary is fuzzed on its Yjs protocol below.
text_bad_frames = bad_frames.filter(lambda f: isinstance(f, str))


def refused_position(v) -> bool:
    """A collab position the protocol refuses (CollabPosition). The fuzz had its own
    bounds (10**6 for a cursor, from 10**7 for an edit): valid frames it sent as bad
    were answered with no error, and it timed out waiting for one."""
    return not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= COLLAB_POSITION_MAX)


FIRST_BAD_POSITION = COLLAB_POSITION_MAX + 1
bad_positions = st.one_of(json_value.filter(refused_position), st.integers(min_value=FIRST_BAD_POSITION))

# Route-specific shapes with wrong field types (bad) and valid shapes (accepted).
ROUTE_BAD = {
    "chat": st.builds(
        lambda v: json.dumps({"type": "chat_message", "message": v}),
        json_value.filter(lambda v: not (isinstance(v, str) and 1 <= len(v) <= 4000)),
    ),
    "collab": st.builds(
        lambda action, position, text: json.dumps(
            {"type": "edit", "action": action, "position": position, "text": text}
        ),
        st.one_of(json_value.filter(lambda v: v not in ("insert", "delete")), st.just("insert")),
        bad_positions,
        json_value,
    )
    | st.builds(lambda p: json.dumps({"type": "cursor_move", "position": p}), bad_positions),
    "notifications": st.builds(
        lambda v: json.dumps({"type": "mark_read", "notification_id": v}),
        json_value.filter(lambda v: not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 2**62)),
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
        st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=100).filter(str.strip),
        st.sampled_from(["bob", "admin"]),
    ),
    # Valid edits (at 0: always inside the document), claiming another author.
    "collab": st.builds(
        lambda text, who: {
            "type": "edit",
            "action": "insert",
            "position": 0,
            "text": text,
            "client_id": uuid.uuid4().hex,
            "user": who,
            "user_id": 2,
        },
        # Valid text: no control characters (refused as invalid_frame, protocol.py).
        st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20),
        st.sampled_from(["bob", "admin"]),
    ),
}
# How a route answers a valid frame (found by its client_id): chat echoes it with its
# real author, collab acknowledges the edit.
ACCEPTED = {"chat": lambda f, fuzzer: f["user"] == fuzzer, "collab": lambda f, fuzzer: f["type"] == "ack"}

# Valid commands without an answer to the sender: each must be taken quietly (no error
# frame before the probe's answer). Notifications: mark_read of another user's id
# (`others`: bob's notifications, made for the test) is refused as not_found.
QUIET_FRAMES = {
    "chat": st.just({"type": "typing"}),
    "collab": st.builds(lambda p: {"type": "cursor_move", "position": p}, st.integers(0, 3)),
}


def probe(route_name: str) -> dict:
    """The frame that shows a socket still works, and its success answer's test."""
    if route_name == "chat":
        cid = uuid.uuid4().hex
        return {"type": "chat_message", "message": "probe", "client_id": cid}
    if route_name == "collab":
        cid = uuid.uuid4().hex
        return {"type": "edit", "action": "insert", "position": 0, "text": "", "client_id": cid}
    if route_name == "notifications":
        return {"type": "mark_all_read"}
    return {"type": "ping"}


def probe_answered(route_name: str, sent: dict, answer: dict) -> bool:
    """`answer` is the probe's success answer (None: not this frame, keep reading)."""
    if answer["type"] == "error":
        raise AssertionError(f"the probe after a bad frame was refused: {answer}")
    if "client_id" in sent:
        return answer.get("client_id") == sent["client_id"]
    if route_name == "notifications":
        return answer["type"] == "unread_count"
    return answer["type"] == "pong"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def route_url(fleet, route, doc_id: int) -> str:
    return fleet.ws_url + PATHS.get(route.path, route.path).format(doc=doc_id)


def pace(route) -> float:
    """Seconds between frames that stay under the connection's rate: fuzz the parser,
    not the limiter."""
    per_connection, _ = connection_rate(route)
    return 1 / min(per_connection, env_float("RATE_USER_PER_SECOND"))


@pytest.fixture(scope="module")
def collab_doc(fleet, tokens) -> int:
    return new_document(fleet, tokens, content="hello", share={"bob": "edit"})


def pids(fleet) -> dict[str, str]:
    return {
        line.split()[0]: line.split()[3] for line in fleet.ctl("status", check=False).splitlines() if "RUNNING" in line
    }


def recv_json(ws, timeout=5.0) -> dict:
    raw = ws.recv(timeout=timeout)
    return json.loads(raw) if isinstance(raw, str) else {"type": "<binary>"}


def skip_to(ws, pred, timeout=5.0) -> dict:
    while True:
        frame = recv_json(ws, timeout)
        if pred(frame):
            return frame


def notifications_of(fleet, tokens, user: str, count: int) -> list[int]:
    """`count` unread notifications of `user`, pushed by staff; their ids."""
    ids = []
    for i in range(count):
        res = httpx.post(
            f"{fleet.url}/api/notifications/",
            json={"user": user, "title": f"fuzz-target {i}", "message": "must stay unread"},
            headers={"Authorization": f"Bearer {tokens['admin']}"},
            timeout=10,
        )
        assert res.status_code == 201, res.text
        ids.append(res.json()["id"])
    return ids


def unread_ids(fleet, tokens, user: str) -> set[int]:
    res = httpx.get(
        f"{fleet.url}/api/notifications/",
        params={"unread": 1, "limit": 100},
        headers={"Authorization": f"Bearer {tokens[user]}"},
        timeout=10,
    )
    res.raise_for_status()
    return {n["id"] for n in res.json()["notifications"]}


@pytest.mark.parametrize("route", routes.load().websocket, ids=lambda r: r.name)
def test_fuzzed_frames_get_error_frames_and_disturb_no_one(fleet, tokens, collab_doc, route):
    before = pids(fleet)
    # A staff-only route is fuzzed by staff (anyone else is refused before any frame).
    fuzzer, witness = ("admin", "admin") if route.staff_only else ("alice", "bob")
    headers = {"Authorization": f"Bearer {tokens[fuzzer]}"}
    # The bystander's own ids, sent by the fuzzer: refused as missing, and still unread.
    others = notifications_of(fleet, tokens, witness, 3) if route.name == "notifications" else []
    with (
        connect(
            route_url(fleet, route, collab_doc),
            additional_headers={"Authorization": f"Bearer {tokens[witness]}"},
            origin=fleet.url,
            **QUIET,
        ) as bystander,
        connect(
            route_url(fleet, route, collab_doc), additional_headers=headers, origin=fleet.url, max_size=None, **QUIET
        ) as ws,
    ):
        bad = text_bad_frames if route.binary else bad_frames
        bad = bad | ROUTE_BAD[route.name] if route.name in ROUTE_BAD else bad
        if others:
            bad = bad | st.sampled_from(others).map(lambda i: json.dumps({"type": "mark_read", "notification_id": i}))
        good = ROUTE_FRAMES.get(route.name, st.just({"type": "ping"}))
        quiet = QUIET_FRAMES.get(route.name, st.just({"type": "ping"}))
        seen = {"bad": 0, "good": 0, "quiet": 0, "valid_after_bad": 0}

        def still_works() -> None:
            """The probe gets its success answer (errors before it: none allowed)."""
            sent = probe(route.name)
            time.sleep(pace(route))
            ws.send(json.dumps(sent))
            skip_to(ws, lambda fr: probe_answered(route.name, sent, fr))

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(
            st.one_of(bad.map(lambda f: ("bad", f)), good.map(lambda f: ("good", f)), quiet.map(lambda f: ("quiet", f)))
        )
        def one(case):
            kind, f = case
            seen[kind] += 1
            time.sleep(pace(route))
            ws.send(json.dumps(f) if isinstance(f, dict) else f)
            if kind == "bad":
                answer = skip_to(ws, lambda fr: fr["type"] == "error")
                assert answer["code"] not in ("internal_error", "rate_limited"), answer
                still_works()
                seen["valid_after_bad"] += 1
            elif kind == "quiet" or f["type"] == "ping":
                still_works()  # taken without an error frame
            else:
                echo = skip_to(ws, lambda fr: fr.get("client_id") == f["client_id"] or fr["type"] == "error")
                assert echo["type"] != "error", echo
                assert ACCEPTED[route.name](echo, fuzzer), echo

        one()
        # The bystander was not disturbed: still open, and no error frames.
        bystander.send(json.dumps({"type": "ping"}))
        got = []
        while not got or got[-1]["type"] != "pong":
            got.append(recv_json(bystander))
        assert [f for f in got if f["type"] == "error"] == []
    assert pids(fleet) == before, "a process crashed or restarted"
    assert set(others) <= unread_ids(fleet, tokens, witness), "another user's mark_read changed the witness's"
    print(f"\nfuzz {route.name}: {seen}")
    assert seen["bad"] > 0
    assert seen["valid_after_bad"] == seen["bad"], seen


# ---------------------------------------------------------------- collab: Yjs ----
def _sync(step: int, payload: bytes) -> bytes:
    return bytes([ydoc.MSG_SYNC, step]) + ydoc.var_bytes(payload)


def _awareness(client_id: int, clock: int, state: bytes) -> bytes:
    body = ydoc.write_var_uint(1) + ydoc.write_var_uint(client_id) + ydoc.write_var_uint(clock) + ydoc.var_bytes(state)
    return bytes([ydoc.MSG_AWARENESS]) + ydoc.var_bytes(body)


# Binary frames no Yjs client sends: each is closed with 4400, or is harmless.
garbage_yjs = st.one_of(
    st.binary(min_size=1, max_size=300),  # anything
    st.builds(_sync, st.integers(0, 2), st.binary(max_size=200)),  # a sync message carrying garbage
    st.builds(lambda kind, tail: ydoc.write_var_uint(kind) + tail, st.integers(4, 2**40), st.binary(max_size=20)),
    st.builds(lambda p: bytes([ydoc.MSG_AWARENESS]) + ydoc.var_bytes(p), st.binary(max_size=200)),
    # Awareness whose state is not JSON (y-protocols would JSON.parse it on every client).
    st.builds(
        _awareness,
        st.integers(0, 2**53),
        st.integers(0, 2**32),
        st.text(max_size=30).filter(lambda t: not _is_json(t)).map(str.encode),
    ),
    st.builds(lambda n: bytes([ydoc.MSG_SYNC, ydoc.SYNC_UPDATE]) + ydoc.write_var_uint(n), st.integers(10, 2**30)),
)
# What a Yjs editor sends: an insert into its synced copy (position scaled to the text).
good_yjs = st.builds(lambda where, text: ("insert", where, text), st.floats(0, 1), st.text(min_size=1, max_size=20))


class YjsSocket:
    """A sync Yjs editor: its own pycrdt copy, kept current by sync replies and updates."""

    def __init__(self, url: str, tok: str, origin: str):
        self.url, self.tok, self.origin = url, tok, origin
        self.doc = Doc()
        self.text = self.doc.get(ydoc.TEXT_NAME, type=Text)
        self.awareness_states: list[str] = []
        self.ws = None
        # Step 2 answers owed to step 1 messages other than sync()'s own (a fuzzed one
        # whose state vector decodes): sync() reads past them, or it would take one for
        # its own answer and return before the server handled what came after.
        self.owed = 0

    def connect(self) -> YjsSocket:
        self.owed = 0
        self.ws = connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {self.tok}"},
            origin=self.origin,
            max_size=None,
            **QUIET,
        )
        self.sync()
        return self

    def sync(self) -> None:
        """Send step 1 and apply everything up to the server's step 2 (its answer)."""
        self.ws.send(ydoc.sync_step1(self.doc))
        answers = 1 + self.owed
        while True:
            raw = self.ws.recv(timeout=10)
            if isinstance(raw, str):
                continue  # user_joined/user_left frames (a Yjs client ignores text)
            message = ydoc.parse(raw)
            if message.kind == ydoc.MSG_SYNC and message.step != ydoc.SYNC_STEP1:
                self.doc.apply_update(message.payload)
                if message.step == ydoc.SYNC_STEP2:
                    answers -= 1
                    self.owed = max(0, self.owed - 1)
                    if answers == 0:
                        return
            elif message.kind == ydoc.MSG_AWARENESS:
                self.awareness_states += [e.state for e in ydoc.read_awareness(message.payload)]

    def send_raw(self, data: bytes) -> None:
        try:
            message = ydoc.parse(data)
        except ydoc.ProtocolError:
            message = None
        if message is not None and message.kind == ydoc.MSG_SYNC and message.step == ydoc.SYNC_STEP1:
            self.owed += 1  # answered with a step 2, or closed with 4400 if it does not decode
        self.ws.send(data)

    def insert(self, where: float, value: str) -> None:
        before = self.doc.get_state()
        # pycrdt indexes UTF-8 bytes: an index inside a character would be our bug.
        current = str(self.text)
        self.text.insert(len(current[: int(where * len(current))].encode()), value)
        self.ws.send(ydoc.update_message(self.doc.get_update(before)))


def test_fuzzed_yjs_frames_close_4400_and_disturb_no_one(fleet, tokens, collab_doc):
    route = next(r for r in routes.load().websocket if r.name == "collab")
    url = f"{fleet.ws_url}/ws/collab/{collab_doc}/"
    before = pids(fleet)
    bystander = YjsSocket(url, tokens["bob"], fleet.url).connect()
    fuzzer = YjsSocket(url, tokens["alice"], fleet.url).connect()
    seen = {"bad": 0, "good": 0, "closed_4400": 0}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.one_of(garbage_yjs.map(lambda f: ("bad", f)), good_yjs.map(lambda f: ("good", f))))
    # Hypothesis draws few valid edits among so much garbage (none in 25, at times):
    # these run every time, so a valid edit is always among the cases.
    @example(("good", ("insert", 0.5, "kept")))
    @example(("good", ("insert", 1.0, "é€😀")))
    def one(case):
        kind, f = case
        seen[kind] += 1
        time.sleep(2 * pace(route))  # the frame and the sync that shows it was handled
        try:
            if kind == "good":
                fuzzer.insert(*f[1:])
            else:
                fuzzer.send_raw(f)
            fuzzer.sync()
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
            # The documented answer to a malformed message; never an internal error.
            assert (kind, code) == ("bad", CloseCode.BAD_REQUEST), (kind, code, f)
            seen["closed_4400"] += 1
            time.sleep(pace(route))
            fuzzer.connect()  # what y-websocket does: reconnect and resync

    try:
        one()
        # The other editor was neither closed nor sent garbage, and still edits.
        bystander.sync()
        bystander.insert(0, "BYSTANDER")
        bystander.sync()
        fuzzer.sync()
        assert [s for s in bystander.awareness_states if not _is_json(s)] == []
        text = str(bystander.text)
        # Edits only insert: the first text and the bystander's are still there, in order.
        rest = iter(text)
        assert text.startswith("BYSTANDER") and all(c in rest for c in "hello"), text
        assert str(fuzzer.text) == text
        deadline = time.monotonic() + 30  # the store is at most one in-flight update behind
        while server_document(fleet, tokens, collab_doc)["content"] != text:
            assert time.monotonic() < deadline, "the stored document differs from the editors'"
            time.sleep(0.3)
    finally:
        bystander.ws.close()
        fuzzer.ws.close()
    assert pids(fleet) == before, "a process crashed or restarted"
    print(f"\nfuzz collab (yjs): {seen}")
    assert seen["bad"] > 0 and seen["good"] > 0, seen


# ------------------------------------------------------- the fuzz's own frames ----
@pytest.mark.parametrize("route", routes.load().websocket, ids=lambda r: r.name)
def test_every_bad_frame_the_fuzz_sends_is_one_the_gateway_refuses(route):
    """A "bad" frame the gateway takes is answered with no error frame: the fuzz then
    waits for one until it times out. Checked against the gateway's own parser, with
    no fleet, so a strategy that drifts from protocol.py fails here at once."""
    bad = text_bad_frames if route.binary else bad_frames
    bad = bad | ROUTE_BAD[route.name] if route.name in ROUTE_BAD else bad

    @settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(bad)
    def refused(f):
        if isinstance(f, bytes):
            assert not route.binary  # binary_not_supported on a text route
            return
        with pytest.raises(FrameError):
            parse_client_frame(route.name, f)

    refused()


@pytest.mark.parametrize("position", [-1, 0, 10**6 + 1, COLLAB_POSITION_MAX, FIRST_BAD_POSITION, True, 1.0, "1"])
def test_the_fuzzs_bad_positions_are_the_ones_collab_refuses(position):
    """A position the fuzz sends as bad but the gateway takes gets no error frame, and
    the fuzz waits for one until it times out: make faults' collab JSON fuzz did, once
    (its old bounds drew such a frame about once in 30,000, e.g. a cursor_move to
    4,674,004). The edges of the protocol's range, in both frames that carry one."""
    edit = {"type": "edit", "action": "insert", "position": position, "text": "x"}
    for f in (edit, {"type": "cursor_move", "position": position}):
        try:
            parse_client_frame("collab", json.dumps(f))
            refused = False
        except FrameError:
            refused = True
        assert refused == refused_position(position), f
    if position == FIRST_BAD_POSITION:  # the smallest of bad_positions' own integers
        assert refused, f
