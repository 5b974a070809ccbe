"""Collaborative editing end to end, through nginx: pycrdt clients on the Yjs protocol
and a client on the seed's JSON protocol edit one document concurrently (some while
offline) and converge with the server; access rules; a restart of the collab worker
during editing; the update log stays bounded."""

from __future__ import annotations

import asyncio
import json
import random
import re

import httpx
import pytest
from collabclients import JsonClient, YClient
from collabhelpers import auth, converged, new_document, server_document, ws_url
from wsclient import Client


async def random_edits(client, rng: random.Random, count: int, tag: str, pause: float = 0.15):
    for i in range(count):
        size = len(client.value)
        if size > 5 and rng.random() < 0.35:
            client.delete(rng.randrange(size), rng.randint(1, 3))
        else:
            client.insert(rng.randint(0, size), f"{tag}{i};")
        await asyncio.sleep(pause * rng.uniform(0.5, 1.5))


async def json_edits(client: JsonClient, rng: random.Random, count: int, pause: float = 0.15):
    for i in range(count):
        size = len(client.value)
        if size > 5 and rng.random() < 0.35:
            await client.edit("delete", rng.randrange(size), length=rng.randint(1, 3))
        else:
            await client.edit("insert", rng.randint(0, size), f"J{i};")
        await asyncio.sleep(pause * rng.uniform(0.5, 1.5))


async def test_pycrdt_and_json_clients_converge_with_offline_edits(fleet, tokens):
    doc_id = new_document(fleet, tokens, "start\n", {"bob": "edit"})
    url = ws_url(fleet, doc_id)
    rng = random.Random(4)
    a = await YClient(url, tokens["alice"], "a").connect()
    b = await YClient(url, tokens["bob"], "b").connect()
    c = await YClient(url, tokens["alice"], "c").connect()
    j = await JsonClient(url, tokens["bob"]).connect()
    for y in (a, b, c):
        await y.wait_synced()
    assert a.value == b.value == c.value == j.value == "start\n"

    # Round 1: everyone at once.
    await asyncio.gather(
        random_edits(a, rng, 15, "a"),
        random_edits(b, rng, 15, "b"),
        random_edits(c, rng, 15, "c"),
        json_edits(j, rng, 15),
    )
    # Round 2: c edits offline while the others go on; then c comes back.
    await c.disconnect()
    await asyncio.gather(
        random_edits(a, rng, 10, "A"), random_edits(c, rng, 10, "C", pause=0.05), json_edits(j, rng, 10)
    )
    c.insert(len(c.value), "<offline-mark>")  # nobody edits after this: it must survive
    await c.connect()
    await c.wait_synced()
    text = await converged(fleet, tokens, doc_id, lambda: [a.value, b.value, c.value, j.value])
    assert "<offline-mark>" in text and len(text) > 40
    for client in (a, b, c):
        assert client.closed_code is None and client.denied == [] and client.text_frames == []
        await client.disconnect()
    await j.close()


async def test_read_only_user_changes_nothing_and_an_outsider_is_refused(fleet, tokens):
    doc_id = new_document(fleet, tokens, "read me", {"bob": "read"})
    url = ws_url(fleet, doc_id)
    reader = await YClient(url, tokens["bob"], "reader").connect()
    await reader.wait_synced()
    assert reader.value == "read me"
    reader.insert(0, "vandal ")
    for _ in range(150):
        if reader.denied:
            break
        await asyncio.sleep(0.1)
    assert reader.denied, "the read-only user was told their change was refused"
    assert server_document(fleet, tokens, doc_id)["content"] == "read me"

    json_reader = await JsonClient(url, tokens["bob"]).connect()
    await json_reader.edit("insert", 0, "x")
    for _ in range(50):
        if any(f["type"] == "error" for f in json_reader.frames):
            break
        await asyncio.sleep(0.1)
    error = next(f for f in json_reader.frames if f["type"] == "error")
    assert error["code"] == "read_only"
    assert server_document(fleet, tokens, doc_id)["content"] == "read me"

    outsider = await Client.connect(url, tokens["admin"])
    assert await outsider.closed_with() == 4403
    res = httpx.get(f"{fleet.url}/api/collab/documents/{doc_id}/", headers=auth(tokens["admin"]))
    assert res.status_code == 403
    missing = await Client.connect(ws_url(fleet, 99999999), tokens["alice"])
    assert await missing.closed_with() == 4404
    await reader.disconnect()
    await json_reader.close()


@pytest.mark.parametrize("how", ["restart", "kill"])
async def test_restart_of_the_collab_worker_during_editing_loses_no_update(fleet, tokens, how):
    """`restart` stops the worker as a deploy does; `kill` crashes it (SIGKILL) and
    supervisord starts it again. The sockets stay up (ws-gateway holds them), unless
    the worker died between storing an update and broadcasting it: then the next
    broadcast skips a seq and the gateway asks them to reconnect (4000), as
    y-websocket clients do on their own."""
    doc_id = new_document(fleet, tokens, "", {"bob": "edit"})
    url = ws_url(fleet, doc_id)
    writer = await YClient(url, tokens["alice"], "w", reconnect=True).connect()
    watcher = await YClient(url, tokens["bob"], "watch", reconnect=True).connect()
    json_writer = await JsonClient(url, tokens["bob"], reconnect=True).connect()
    await writer.wait_synced()

    async def type_lines():
        for i in range(40):
            writer.insert(len(writer.value), f"line {i}\n")
            await json_writer.edit("insert", 0, f"j{i} ", cid=f"j{i}")
            await asyncio.sleep(0.1)

    typing = asyncio.create_task(type_lines())
    await asyncio.sleep(1.0)
    if how == "restart":
        await asyncio.to_thread(fleet.restart, "collab-inbox")
    else:
        await asyncio.to_thread(fleet.kill, "collab-inbox")
    await typing
    # A JSON client sends an unacknowledged edit again with its client_id (an edit the
    # dead worker took, stored or not, is acknowledged once, stored once).
    deadline = asyncio.get_running_loop().time() + 60
    while missing := [i for i in range(40) if f"j{i}" not in json_writer.acks]:
        assert asyncio.get_running_loop().time() < deadline, f"JSON edits never acknowledged: {missing}"
        for i in missing:
            await json_writer.edit("insert", 0, f"j{i} ", cid=f"j{i}")
        await asyncio.sleep(2)
    values = lambda: [writer.value, watcher.value, json_writer.value]  # noqa: E731
    text = await converged(fleet, tokens, doc_id, values, timeout=60)
    # Every Yjs line and every JSON edit is there, each once.
    for i in range(40):
        assert text.count(f"line {i}\n") == 1
        assert text.count(f"j{i} ") == 1, text
    for client in (writer, watcher):
        await client.disconnect()
    await json_writer.close()


async def test_an_update_lost_on_its_way_to_the_server_is_fetched_from_its_client(fleet, tokens):
    """Yjs has no ack: a lost update (a Redis restart took it) would leave every later
    update of its client pending on the server, and the socket open. The worker sees
    the gap in that client's clock and asks it for what it lacks."""
    doc_id = new_document(fleet, tokens, "", {"bob": "edit"})
    url = ws_url(fleet, doc_id)
    writer = await YClient(url, tokens["alice"], "w").open()
    watcher = await YClient(url, tokens["bob"], "watch").open()
    writer.drop_next = 1
    writer.insert(0, "lost ")
    writer.insert(5, "and found")
    text = await converged(fleet, tokens, doc_id, lambda: [writer.value, watcher.value])
    assert text == "lost and found"
    assert (writer.closes, watcher.closes) == ([], [])  # repaired in place: no reconnect
    for client in (writer, watcher):
        await client.disconnect()


async def test_update_log_is_compacted(fleet, tokens):
    doc_id = new_document(fleet, tokens)
    client = await YClient(ws_url(fleet, doc_id), tokens["alice"], "w").connect()
    await client.wait_synced()
    for i in range(50):
        client.insert(len(client.value), f"{i},")
        await asyncio.sleep(0.12)
    text = await converged(fleet, tokens, doc_id, lambda: [client.value])
    assert text == "".join(f"{i}," for i in range(50))
    body = server_document(fleet, tokens, doc_id)
    assert body["seq"] == 50
    assert body["log_length"] < 20  # COLLAB_COMPACT_UPDATES in the e2e fleet
    await client.disconnect()
    # What an operator sees: the worker counts what it stored and folded.
    port = fleet.program("collab-inbox").metrics_port
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    stored = re.search(r'^switchboard_collab_updates_total\{outcome="stored",source="yjs"\} (\S+)', text, re.M)
    compactions = re.search(r"^switchboard_collab_compactions_total (\S+)", text, re.M)
    assert stored and float(stored.group(1)) >= 50
    assert compactions and float(compactions.group(1)) >= 2


@pytest.mark.parametrize("protocol", ["json"])
async def test_json_client_gets_document_content_and_presence_notices(fleet, tokens, protocol):
    doc_id = new_document(fleet, tokens, "hi", {"bob": "edit"})
    alice = await Client.connect(ws_url(fleet, doc_id) + "?protocol=json", tokens["alice"])
    first = await alice.next_of("document_content")
    assert (first["content"], first["seq"], first["role"]) == ("hi", 0, "owner")
    bob = await Client.connect(ws_url(fleet, doc_id) + "?protocol=json", tokens["bob"])
    await bob.next_of("document_content")
    await alice.next_of("user_joined", user="bob")
    await bob.send({"type": "cursor_move", "position": 1})
    assert (await alice.next_of("cursor"))["position"] == 1
    await bob.send({"type": "edit", "action": "insert", "position": 2, "text": "!"})
    got = await alice.next_of("edit")
    assert (got["user"], got["position"], got["text"], got["action"]) == ("bob", 2, "!", "insert")
    await bob.close()
    await alice.next_of("user_left", user="bob")
    await alice.close()


async def test_a_fast_typist_loses_nothing_to_rate_limits(fleet, tokens):
    """One keystroke is two frames (the update and the caret's awareness). A Yjs socket
    cannot read a text error frame, so the gateway never sends it one: a burst above
    the limits ends in a close that the client answers with a reconnect and a sync,
    which delivers everything."""
    doc_id = new_document(fleet, tokens)
    url = ws_url(fleet, doc_id)
    typist = await YClient(url, tokens["alice"], "fast").connect()
    await typist.wait_synced()
    for i in range(120):
        typist.insert(len(typist.value), "x")
        typist.set_awareness({"cursor": i}, clock=i + 1)
        await asyncio.sleep(0.01)
    # Closed by the gateway at some point (when depends on the machine's load): do what
    # y-websocket does, reconnect and sync, until the server has every keystroke.
    deadline = asyncio.get_running_loop().time() + 60
    while (await asyncio.to_thread(server_document, fleet, tokens, doc_id))["content"] != "x" * 120:
        assert asyncio.get_running_loop().time() < deadline, "the server never got every keystroke"
        if typist.ws is None:
            await typist.connect()
            await typist.wait_synced()
        await asyncio.sleep(0.3)
    assert typist.value == "x" * 120
    assert typist.text_frames == []
    await typist.disconnect()


async def test_a_large_paste_and_a_large_offline_session_go_through(fleet, tokens):
    """Bigger than WS_MAX_MESSAGE_BYTES (64 KiB): collab's route takes up to 1 MiB, since
    a refused sync step 2 would be resent, and refused, on every reconnect."""
    doc_id = new_document(fleet, tokens, "", {"bob": "edit"})
    url = ws_url(fleet, doc_id)
    writer = await YClient(url, tokens["alice"], "paste").connect()
    reader = await YClient(url, tokens["bob"], "read").connect()
    await writer.wait_synced()
    writer.insert(0, "p" * 200_000)  # one update
    await writer.disconnect()
    for i in range(200):
        writer.insert(len(writer.value), f"offline line {i} " + "o" * 500 + "\n")
    await writer.connect()  # its step 2 carries ~100 KB
    await writer.wait_synced()
    text = await converged(fleet, tokens, doc_id, lambda: [writer.value, reader.value], timeout=60)
    assert len(text) > 300_000 and writer.closed_code is None
    await writer.disconnect()
    await reader.disconnect()


async def test_an_oversized_awareness_state_is_dropped_and_the_yjs_socket_stays_open(fleet, tokens):
    """Over COLLAB_AWARENESS_STATE_BYTES (4096 by default) a cursor state is neither kept
    nor relayed; its Yjs sender is sent no text frame and stays connected (docs/protocol.md)."""
    doc_id = new_document(fleet, tokens, "", {"bob": "edit"})
    url = ws_url(fleet, doc_id)
    alice = await YClient(url, tokens["alice"], "alice").open()
    bob = await YClient(url, tokens["bob"], "bob").open()
    try:
        alice.set_awareness({"user": {"name": "alice"}, "pad": "x" * 5000}, clock=1)
        alice.set_awareness({"user": {"name": "alice"}}, clock=2)
        deadline = asyncio.get_running_loop().time() + 15
        while bob.awareness.get(alice.doc.client_id) != json.dumps({"user": {"name": "alice"}}):
            assert asyncio.get_running_loop().time() < deadline, "bob never saw alice's cursor"
            await asyncio.sleep(0.02)
        # In order from one sender on one shard: had the big state been relayed, bob would
        # have got it before the small one.
        mine = [state for client, state in bob.awareness_log if client == alice.doc.client_id]
        assert mine == [json.dumps({"user": {"name": "alice"}})]
        alice.insert(0, "still here")
        deadline = asyncio.get_running_loop().time() + 15
        while bob.value != "still here":
            assert asyncio.get_running_loop().time() < deadline, "alice's socket did not carry on"
            await asyncio.sleep(0.05)
        assert alice.ws is not None and alice.closes == [] and alice.text_frames == []
    finally:
        await alice.disconnect()
        await bob.disconnect()
