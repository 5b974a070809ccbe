"""The collab inbox worker against a real Redis channel layer and a real database:
what a socket is sent, in which order, and what is stored before it is sent."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from pycrdt import Doc, Text

from collab import inbox, store, ydoc
from collab.models import Update
from switchboard import presence as presence_module
from switchboard.tokens import Identity

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("channel_layers")]

ALICE, BOB, CAROL, EVE = Identity(1, "alice"), Identity(2, "bob"), Identity(3, "carol"), Identity(4, "eve")


@pytest.fixture(autouse=True)
def fresh_presence():
    presence_module._shared = None  # its Redis client belongs to the previous test's loop
    yield
    presence_module._shared = None


class Socket:
    """A connection as the gateway holds it: a channel in the document's group."""

    def __init__(self, worker, doc_id: int, user: Identity, protocol: str = "yjs"):
        self.worker, self.doc_id, self.user = worker, doc_id, user
        self.params = {"doc": doc_id, **({"protocol": "json"} if protocol == "json" else {})}
        self.layer = get_channel_layer()
        self.doc, self.text = ydoc.new_doc()

    async def open(self) -> dict:
        self.conn = await self.layer.new_channel()
        await self.layer.group_add(inbox.doc_group(self.doc_id), self.conn)
        # One receive that never times out: cancelling a pub/sub receive unsubscribes
        # the channel (channels_redis), so the test reads from a local queue instead.
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.pump = asyncio.create_task(self._pump())
        await self.worker.dispatch(self.cmd("gw.connect"))
        while True:  # group frames may come first (the step 1 of a freshly loaded doc)
            message = await self.next()
            if message["type"] != "gw.send" or "group" not in message:
                return message

    def cmd(self, kind: str, **extra) -> dict:
        return {
            "type": kind,
            "conn": self.conn,
            "route": "collab",
            "user": self.user.as_dict(),
            "params": self.params,
            **extra,
        }

    async def send(self, data: bytes | dict) -> None:
        if isinstance(data, bytes):
            await self.worker.dispatch(self.cmd("gw.receive", bytes=data))
        else:
            await self.worker.dispatch(self.cmd("gw.receive", frame=data))

    async def _pump(self):
        while True:
            await self.inbox.put(await self.layer.receive(self.conn))

    async def next(self, timeout: float = 5) -> dict:
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def next_frame(self, kind: str) -> dict:
        """The next JSON frame of `kind` sent to this socket (skipping the others)."""
        while True:
            message = await self.next()
            if "text" in message and message.get("exclude_conn") != self.conn:
                data = orjson.loads(message["text"])
                if data["type"] == kind:
                    return data

    async def quiet(self, timeout: float = 0.3) -> list[dict]:
        got = []
        try:
            while True:
                got.append(await self.next(timeout))
        except TimeoutError:
            return got


def new_doc(content: str = "") -> int:
    doc = store.create_document(ALICE, "doc", content)
    store.share(doc, BOB.id, "bob", "edit")
    store.share(doc, CAROL.id, "carol", "read")
    return doc.pk


def local_edit(doc: Doc, text: Text, position: int, value: str) -> bytes:
    before = doc.get_state()
    text.insert(position, value)
    return ydoc.update_message(doc.get_update(before))


async def test_yjs_socket_syncs_and_an_update_is_stored_before_others_get_it():
    doc_id = await database_sync_to_async(new_doc)("hello")
    worker = inbox.CollabInbox()
    alice, bob = Socket(worker, doc_id, ALICE), Socket(worker, doc_id, BOB)
    accept = await alice.open()
    assert accept["type"] == "gw.accept" and accept["kinds"] == ["bytes"]
    assert ydoc.parse(accept["frames"][0]).step == ydoc.SYNC_STEP1
    await bob.open()
    await alice.quiet()
    await bob.quiet()

    # Sync step 1 from a fresh client: the reply carries the whole text.
    await bob.send(ydoc.sync_step1(bob.doc))
    reply = await bob.next()
    bob.doc.apply_update(ydoc.parse(reply["bytes"]).payload)
    assert str(bob.text) == "hello"

    await bob.send(local_edit(bob.doc, bob.text, 5, " world"))
    got = await alice.next()
    # By the time anyone is sent it, the update is in the database.
    assert await database_sync_to_async(store.text_of)(doc_id) == ("hello world", 1)
    alice.doc.apply_update(ydoc.parse(got["bytes"]).payload)
    assert "group" in got and ydoc.parse(got["bytes"]).step == ydoc.SYNC_UPDATE
    # The sender is not echoed: the gateway drops the frame for the excluded socket.
    assert [m["exclude_conn"] for m in await bob.quiet() if "bytes" in m] == [bob.conn]


async def test_read_only_update_is_refused_and_outsider_is_rejected():
    doc_id = await database_sync_to_async(new_doc)("fixed")
    worker = inbox.CollabInbox()
    carol = Socket(worker, doc_id, CAROL)
    await carol.open()
    await carol.send(ydoc.sync_step1(carol.doc))
    for m in await carol.quiet():
        if "bytes" in m and ydoc.parse(m["bytes"]).kind == ydoc.MSG_SYNC:
            carol.doc.apply_update(ydoc.parse(m["bytes"]).payload)
    # Her step 2 with nothing new is not an attempt to write: silently fine.
    await carol.send(bytes([ydoc.MSG_SYNC, ydoc.SYNC_STEP2]) + ydoc.var_bytes(carol.doc.get_update(b"\x00")))
    assert await carol.quiet() == []
    await carol.send(local_edit(carol.doc, carol.text, 0, "vandal "))
    denied = await carol.next()
    assert denied["bytes"][0] == ydoc.MSG_AUTH
    assert await database_sync_to_async(store.text_of)(doc_id) == ("fixed", 0)

    json_carol = Socket(worker, doc_id, CAROL, "json")
    await json_carol.open()
    await json_carol.send({"type": "edit", "action": "insert", "position": 0, "text": "x"})
    error = await json_carol.next_frame("error")
    assert error["code"] == "read_only"

    eve = Socket(worker, doc_id, EVE)
    rejected = await eve.open()
    assert rejected == {"type": "gw.reject", "code": 4403}
    nobody = Socket(worker, 999999, EVE)
    assert (await nobody.open())["code"] == 4404


async def test_json_and_yjs_sockets_see_one_document():
    doc_id = await database_sync_to_async(new_doc)("ab")
    worker = inbox.CollabInbox()
    yjs, js = Socket(worker, doc_id, ALICE), Socket(worker, doc_id, BOB, "json")
    await yjs.open()
    accept = await js.open()
    content = orjson.loads(accept["frames"][0])
    assert (content["type"], content["content"], content["seq"]) == ("document_content", "ab", 0)
    assert accept["kinds"] == ["text"] and accept["watermarks"] == {inbox.doc_group(doc_id): 0}
    await yjs.send(ydoc.sync_step1(yjs.doc))
    for m in await yjs.quiet():
        if "bytes" in m and ydoc.parse(m["bytes"]).kind == ydoc.MSG_SYNC:
            yjs.doc.apply_update(ydoc.parse(m["bytes"]).payload)
    await js.quiet()

    await js.send({"type": "edit", "action": "insert", "position": 1, "text": "XY", "client_id": "e1"})
    to_yjs = await yjs.next()
    yjs.doc.apply_update(ydoc.parse(to_yjs["bytes"]).payload)
    assert str(yjs.text) == "aXYb"
    ack = await js.next_frame("ack")
    assert (ack["seq"], ack["client_id"], ack["applied"]) == (1, "e1", True)

    await yjs.send(local_edit(yjs.doc, yjs.text, 0, ">"))
    sent = await js.quiet()
    frames = [orjson.loads(m["text"]) for m in sent if "text" in m]
    edits = [f for f in frames if f["type"] == "edit"]
    assert edits == [{"type": "edit", "user": "alice", "seq": 2, "action": "insert", "position": 0, "text": ">"}]
    # Every frame of a stored update carries the document's seq, one part each, so the
    # gateway can tell a lost broadcast from the next (GwSend).
    assert [(m["seq"], m.get("part", 0), "bytes" in m) for m in sent if "seq" in m] == [(2, 0, True), (2, 1, False)]


async def test_log_is_compacted_past_the_threshold_and_a_new_worker_reloads_exactly(monkeypatch):
    monkeypatch.setenv("COLLAB_COMPACT_UPDATES", "10")
    doc_id = await database_sync_to_async(new_doc)()
    worker = inbox.CollabInbox()
    alice = Socket(worker, doc_id, ALICE)
    await alice.open()
    for i in range(25):
        await alice.send(local_edit(alice.doc, alice.text, 0, chr(65 + i % 26)))
    expected = str(alice.text)
    count = await database_sync_to_async(Update.objects.filter(document_id=doc_id).count)()
    assert count == 5  # 25 updates, folded at 10 and 20
    assert await database_sync_to_async(store.text_of)(doc_id) == (expected, 25)

    restarted = inbox.CollabInbox()  # a new process: nothing in memory
    bob = Socket(restarted, doc_id, BOB)
    await bob.open()
    await bob.send(ydoc.sync_step1(bob.doc))
    for m in await bob.quiet():
        if "bytes" in m and ydoc.parse(m["bytes"]).kind == ydoc.MSG_SYNC:
            bob.doc.apply_update(ydoc.parse(m["bytes"]).payload)
    assert str(bob.text) == expected


async def test_a_malformed_message_closes_the_socket_and_changes_nothing():
    doc_id = await database_sync_to_async(new_doc)("ok")
    worker = inbox.CollabInbox()
    alice = Socket(worker, doc_id, ALICE)
    await alice.open()
    await alice.quiet()
    await alice.send(b"\x00\x02\x05\x01\x02")
    assert (await alice.next()) == {"type": "gw.close", "code": 4400}
    await alice.send(b"\x00\x00\x03\xff\xff\xff")  # step 1 with a state vector cut short
    assert (await alice.next()) == {"type": "gw.close", "code": 4400}
    assert await database_sync_to_async(store.text_of)(doc_id) == ("ok", 0)


async def test_cursors_leave_with_their_socket_and_come_back_after_a_reconnect():
    doc_id = await database_sync_to_async(new_doc)()
    worker = inbox.CollabInbox()
    alice, bob = Socket(worker, doc_id, ALICE), Socket(worker, doc_id, BOB)
    await alice.open()
    await bob.open()

    def states(messages):
        return [
            (e.client_id, e.clock, e.state)
            for m in messages
            if "bytes" in m and m["bytes"][0] == ydoc.MSG_AWARENESS
            for e in ydoc.read_awareness(ydoc.parse(m["bytes"]).payload)
        ]

    await alice.send(ydoc.awareness_message([ydoc.AwarenessEntry(55, 1, '{"user":{"name":"alice"}}')]))
    assert states(await bob.quiet()) == [(55, 1, '{"user":{"name":"alice"}}')]
    await worker.dispatch(alice.cmd("gw.disconnect", code=1000))
    assert states(await bob.quiet()) == [(55, 2, "null")]
    # Back with the clock it had: lifted above the removal, or Yjs clients ignore it.
    again = Socket(worker, doc_id, ALICE)
    await again.open()
    await again.send(ydoc.awareness_message([ydoc.AwarenessEntry(55, 1, '{"user":{"name":"alice"}}')]))
    assert states(await bob.quiet()) == [(55, 3, '{"user":{"name":"alice"}}')]
    # y-websocket's disconnect() says goodbye itself, at its own clock; same story.
    await again.send(ydoc.awareness_message([ydoc.AwarenessEntry(55, 3, "null")]))
    assert states(await bob.quiet()) == [(55, 3, "null")]
    await again.send(ydoc.awareness_message([ydoc.AwarenessEntry(55, 3, '{"user":{"name":"alice"}}')]))
    assert states(await bob.quiet()) == [(55, 4, '{"user":{"name":"alice"}}')]
    # Echoes of what everyone already has are not relayed again.
    await bob.send(ydoc.awareness_message([ydoc.AwarenessEntry(55, 4, '{"user":{"name":"alice"}}')]))
    assert states(await bob.quiet()) == []


async def test_a_json_edit_resent_with_its_client_id_is_acknowledged_not_applied_twice():
    doc_id = await database_sync_to_async(new_doc)("ab")
    worker = inbox.CollabInbox()
    js = Socket(worker, doc_id, BOB, "json")
    await js.open()
    edit = {"type": "edit", "action": "insert", "position": 2, "text": "!", "client_id": "k1"}
    await js.send(edit)
    first = await js.next_frame("ack")
    await js.send(edit)  # as after a reconnect that lost the ack
    again = await js.next_frame("ack")
    assert (again["seq"], again["duplicate"], again["edits"]) == (first["seq"], True, [])
    assert await database_sync_to_async(store.text_of)(doc_id) == ("ab!", 1)


async def test_an_update_after_a_lost_one_asks_its_sender_for_what_the_worker_lacks():
    """Yjs has no ack: an update lost on its way to the worker (a Redis restart) leaves
    every later update of that client pending, unseen. The worker notices the gap in
    the client's clock and sends the sender sync step 1; its step 2 fills the gap."""
    doc_id = await database_sync_to_async(new_doc)("")
    worker = inbox.CollabInbox()
    alice, bob = Socket(worker, doc_id, ALICE), Socket(worker, doc_id, BOB)
    accept = await alice.open()
    assert accept["watermarks"] == {inbox.doc_group(doc_id): 0}
    await bob.open()
    await alice.quiet()
    await bob.quiet()

    local_edit(alice.doc, alice.text, 0, "lost ")  # never reaches the worker
    await alice.send(local_edit(alice.doc, alice.text, 5, "found"))
    assert await database_sync_to_async(store.text_of)(doc_id) == ("", 0)  # pending: nothing to store
    ask = [m for m in await alice.quiet() if "group" not in m and "bytes" in m]
    assert [ydoc.parse(m["bytes"]).step for m in ask] == [ydoc.SYNC_STEP1]

    await alice.send(ydoc.sync_step2(alice.doc, ydoc.parse(ask[0]["bytes"]).payload))
    assert await database_sync_to_async(store.text_of)(doc_id) == ("lost found", 1)
    for m in await bob.quiet():
        if "bytes" in m and ydoc.parse(m["bytes"]).kind == ydoc.MSG_SYNC:
            bob.doc.apply_update(ydoc.parse(m["bytes"]).payload)
    assert str(bob.text) == "lost found"


def awareness_states(messages) -> list[tuple[int, int, str]]:
    """The awareness entries in what a socket was sent."""
    return [
        (e.client_id, e.clock, e.state)
        for m in messages
        if "bytes" in m and m["bytes"][0] == ydoc.MSG_AWARENESS
        for e in ydoc.read_awareness(ydoc.parse(m["bytes"]).payload)
    ]


def state(name: str, pad: int = 0) -> str:
    return orjson.dumps({"user": {"name": name}, "pad": "x" * pad}).decode()


async def test_awareness_states_past_the_documents_bound_are_dropped_and_a_yjs_socket_gets_no_text(monkeypatch):
    monkeypatch.setenv("COLLAB_AWARENESS_STATES", "2")
    doc_id = await database_sync_to_async(new_doc)()
    worker = inbox.CollabInbox()
    alice, bob = Socket(worker, doc_id, ALICE), Socket(worker, doc_id, BOB)
    await alice.open()
    await bob.open()
    await alice.quiet()
    await bob.quiet()

    await alice.send(ydoc.awareness_message([ydoc.AwarenessEntry(1, 1, state("a1"))]))
    await alice.send(ydoc.awareness_message([ydoc.AwarenessEntry(2, 1, state("a2"))]))
    assert awareness_states(await bob.quiet()) == [(1, 1, state("a1")), (2, 1, state("a2"))]
    # A third client id: the document is full. Neither relayed nor kept, and the sender,
    # a Yjs socket, is told nothing in text (it could not read it).
    await alice.send(ydoc.awareness_message([ydoc.AwarenessEntry(3, 1, state("a3"))]))
    assert awareness_states(await bob.quiet()) == []
    sent_to_alice = await alice.quiet()
    assert not [m for m in sent_to_alice if "text" in m and m.get("exclude_conn") != alice.conn]
    assert not [m for m in sent_to_alice if m["type"] == "gw.close"]
    # In one message with a known client's renewal: only the renewal goes out.
    await alice.send(
        ydoc.awareness_message([ydoc.AwarenessEntry(3, 2, state("a3")), ydoc.AwarenessEntry(1, 2, state("a1"))])
    )
    assert awareness_states(await bob.quiet()) == [(1, 2, state("a1"))]
    # A newcomer is shown the states the document holds, not the dropped one.
    carol = Socket(worker, doc_id, CAROL)
    accept = await carol.open()
    assert {e for e, *_ in awareness_states([{"bytes": f} for f in accept["frames"]])} == {1, 2}
    # One leaves: room for the next.
    await alice.send(ydoc.awareness_message([ydoc.AwarenessEntry(2, 2, "null")]))
    await alice.send(ydoc.awareness_message([ydoc.AwarenessEntry(3, 3, state("a3"))]))
    assert awareness_states(await bob.quiet()) == [(2, 2, "null"), (3, 3, state("a3"))]


async def test_an_awareness_state_over_its_byte_bound_is_dropped(monkeypatch):
    monkeypatch.setenv("COLLAB_AWARENESS_STATE_BYTES", "100")
    doc_id = await database_sync_to_async(new_doc)()
    worker = inbox.CollabInbox()
    alice, bob = Socket(worker, doc_id, ALICE), Socket(worker, doc_id, BOB)
    await alice.open()
    await bob.open()
    await alice.quiet()
    await bob.quiet()

    small, big = state("alice"), state("alice", pad=100)
    assert len(small.encode()) <= 100 < len(big.encode())
    await alice.send(ydoc.awareness_message([ydoc.AwarenessEntry(7, 1, small)]))
    assert awareness_states(await bob.quiet()) == [(7, 1, small)]
    # Too big: others keep the last state they were sent; the server keeps it too.
    await alice.send(ydoc.awareness_message([ydoc.AwarenessEntry(7, 2, big), ydoc.AwarenessEntry(8, 1, big)]))
    assert awareness_states(await bob.quiet()) == []
    assert not [m for m in await alice.quiet() if "text" in m or m["type"] == "gw.close"]
    carol = Socket(worker, doc_id, CAROL)
    accept = await carol.open()
    assert [(c, s) for c, _, s in awareness_states([{"bytes": f} for f in accept["frames"]])] == [(7, small)]
    # Back within the bound: relayed again.
    await alice.send(ydoc.awareness_message([ydoc.AwarenessEntry(7, 3, state("alice!"))]))
    assert awareness_states(await bob.quiet()) == [(7, 3, state("alice!"))]


async def test_a_json_cursor_past_the_bound_gets_an_error_frame_and_the_socket_stays_open(monkeypatch):
    """A JSON editor's caret is one awareness state of the document, like a Yjs client's."""
    monkeypatch.setenv("COLLAB_AWARENESS_STATES", "1")
    doc_id = await database_sync_to_async(new_doc)("abc")
    worker = inbox.CollabInbox()
    alice, bob = Socket(worker, doc_id, ALICE), Socket(worker, doc_id, BOB, "json")
    carol = Socket(worker, doc_id, CAROL, "json")
    await alice.open()
    await bob.open()
    await carol.open()
    for s in (alice, bob, carol):
        await s.quiet()

    await alice.send(ydoc.awareness_message([ydoc.AwarenessEntry(1, 1, state("alice"))]))
    await alice.quiet()
    await bob.send({"type": "cursor_move", "position": 1})
    error = await bob.next_frame("error")
    assert error["code"] == "awareness_limit" and "1" in error["message"], error
    assert [orjson.loads(m["text"])["type"] for m in await carol.quiet() if "text" in m] == []
    # Still open: bob edits on.
    await bob.send({"type": "edit", "action": "insert", "position": 0, "text": "!", "client_id": "b1"})
    assert (await bob.next_frame("ack"))["applied"] is True
    # alice's cursor leaves: bob's caret is shown, and from then on it holds the place.
    await alice.send(ydoc.awareness_message([ydoc.AwarenessEntry(1, 2, "null")]))
    await bob.quiet()
    await bob.send({"type": "cursor_move", "position": 2})
    assert await carol.next_frame("cursor") == {"type": "cursor", "user": "bob", "position": 2}
    await alice.send(ydoc.awareness_message([ydoc.AwarenessEntry(1, 3, state("alice"))]))
    assert awareness_states(await carol.quiet() + await bob.quiet()) == []
    # bob's socket closes: his caret's place is free again.
    await alice.quiet()
    await worker.dispatch(bob.cmd("gw.disconnect", code=1000))
    await alice.send(ydoc.awareness_message([ydoc.AwarenessEntry(1, 4, state("alice"))]))
    assert awareness_states(await alice.quiet()) == [(1, 4, state("alice"))]
