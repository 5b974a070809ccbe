"""Who may see a collab document once its owner changes their mind, from outside
through nginx and both ws-gateway processes: a revoked user's open sockets close with
4403 before anything typed after the revoke reaches them, and their reconnect is
refused; a downgraded editor reads on but writes nothing. Failed before the fix: bob's
sockets stayed open and received every edit alice typed after revoking him."""

from __future__ import annotations

import asyncio
import json

import httpx
from collabclients import JsonClient, YClient
from collabhelpers import auth, new_document, server_document, ws_url
from wsclient import Client

# Two of each kind: nginx spreads them over the fleet's two gateway processes.
SOCKETS_PER_KIND = 2


def share(fleet, tokens, doc_id: int, username: str, role: str) -> None:
    res = httpx.post(
        f"{fleet.url}/api/collab/documents/{doc_id}/share/",
        json={"username": username, "role": role},
        headers=auth(tokens["alice"]),
        timeout=15,
    )
    assert res.status_code == 200, res.text


async def until(condition, timeout: float = 15, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_revoking_a_role_closes_the_users_sockets_before_the_next_edit(fleet, tokens):
    doc_id = new_document(fleet, tokens, "shared ", {"bob": "edit"})
    url = ws_url(fleet, doc_id)
    bob_json = [await JsonClient(url, tokens["bob"]).connect() for _ in range(SOCKETS_PER_KIND)]
    bob_yjs = [await YClient(url, tokens["bob"], f"bob{i}").open() for i in range(SOCKETS_PER_KIND)]
    alice = await JsonClient(url, tokens["alice"]).connect()
    alice_yjs = await YClient(url, tokens["alice"], "alice").open()
    try:
        # Relayed while bob has access: every one of his sockets sees it.
        await alice.edit("insert", 0, "before ")
        await until(
            lambda: all("before " in c.value for c in bob_json + bob_yjs), what="bob's sockets to see alice's edit"
        )

        share(fleet, tokens, doc_id, "bob", "none")
        # Typed once the owner was told bob is out: neither protocol may carry it to him.
        await alice.edit("insert", 0, "AFTER-JSON ")
        alice_yjs.insert(0, "AFTER-YJS ")
        await until(
            lambda: (
                "AFTER-JSON" in server_document(fleet, tokens, doc_id)["content"]
                and "AFTER-YJS" in server_document(fleet, tokens, doc_id)["content"]
            ),
            what="alice's edits to be stored",
        )
        await until(
            lambda: all(c.closes for c in bob_json) and all(y.closed_code is not None for y in bob_yjs),
            what="bob's sockets to close",
        )
        assert [c.closes for c in bob_json] == [[4403]] * SOCKETS_PER_KIND
        assert [y.closed_code for y in bob_yjs] == [4403] * SOCKETS_PER_KIND
        for c in bob_json:
            assert not any("AFTER" in json.dumps(f) for f in c.frames), c.frames
        for y in bob_yjs:
            assert "AFTER" not in y.value, y.value
            assert y.text_frames == []

        # Coming back is refused at the handshake, on either protocol.
        again = await Client.connect(f"{url}?protocol=json", tokens["bob"])
        assert await again.closed_with() == 4403
        assert not any("AFTER" in json.dumps(f) for f in again.frames), again.frames
        again_yjs = await YClient(url, tokens["bob"], "again").connect()
        await until(lambda: again_yjs.closed_code is not None, what="the Yjs reconnect to be refused")
        assert again_yjs.closed_code == 4403 and "AFTER" not in again_yjs.value

        # alice's own sockets are untouched by bob's revoke.
        await alice.edit("insert", 0, "still ")
        await until(lambda: alice_yjs.value.startswith("still "), what="alice's sockets to go on")
        assert alice.closes == [] and alice_yjs.closed_code is None
    finally:
        for c in [*bob_json, alice]:
            await c.close()
        for y in [*bob_yjs, alice_yjs]:
            await y.disconnect()


async def test_a_downgraded_editor_reads_on_but_writes_nothing(fleet, tokens):
    doc_id = new_document(fleet, tokens, "text", {"bob": "edit"})
    url = ws_url(fleet, doc_id)
    bob = await JsonClient(url, tokens["bob"]).connect()
    bob_yjs = await YClient(url, tokens["bob"], "bob").open()
    alice = await JsonClient(url, tokens["alice"]).connect()
    try:
        await bob.edit("insert", 0, "ok ")
        await until(lambda: alice.value == "ok text", what="bob's edit while an editor")

        share(fleet, tokens, doc_id, "bob", "read")
        await bob.edit("insert", 0, "json-vandal ")
        bob_yjs.insert(0, "yjs-vandal ")
        await until(lambda: any(f["type"] == "error" for f in bob.frames), what="bob's JSON edit to be refused")
        assert next(f for f in bob.frames if f["type"] == "error")["code"] == "read_only"
        await until(lambda: bob_yjs.denied, what="bob's Yjs update to be refused")

        # A reader still reads: alice's next edit reaches both of bob's sockets.
        await alice.edit("insert", len(alice.value), " more")
        await until(lambda: bob.value.endswith(" more") and bob_yjs.value.endswith(" more"), what="bob to read on")
        assert server_document(fleet, tokens, doc_id)["content"] == "ok text more"
        assert bob.closes == [] and bob_yjs.closed_code is None
    finally:
        for c in (bob, alice):
            await c.close()
        await bob_yjs.disconnect()
