"""The browser client (clients/js) in Node against the fleet through nginx: each
credential, terminal close codes, and a drop in the middle of sending (the client's TCP
connection destroyed under it, or both gateways SIGKILLed), after which every
acknowledged message was shown once and in seq order and every unacknowledged one was
resent and stored once (the room's history over REST)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

JS = Path(__file__).resolve().parents[1] / "clients" / "js"


def node(*args: str, timeout: float = 90) -> dict:
    result = subprocess.run(["node", *args], cwd=JS, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(autouse=True)
def _installed():
    if not (JS / "node_modules" / "ws").exists():
        pytest.fail("clients/js/node_modules is missing: run `make web`")


def new_room(fleet, tokens) -> str:
    slug = "js" + uuid.uuid4().hex[:10]
    res = httpx.post(
        f"{fleet.url}/api/chat/rooms/", json={"name": slug}, headers={"Authorization": f"Bearer {tokens['alice']}"}
    )
    assert res.status_code == 201, res.text
    return res.json()["slug"]


def stored(fleet, tokens, room: str) -> list[dict]:
    res = httpx.get(
        f"{fleet.url}/api/chat/rooms/{room}/messages/",
        params={"after": 0, "limit": 200},
        headers={"Authorization": f"Bearer {tokens['alice']}"},
    )
    res.raise_for_status()
    return res.json()["messages"]


def check_drop(fleet, tokens, room: str, out: dict, count: int) -> None:
    assert out["closes"] >= 1, "the connection never dropped"
    assert out["pendingLeft"] == 0, out
    history = stored(fleet, tokens, room)
    ids = [m.get("client_id") for m in history]
    for client_id in out["sent"]:
        assert ids.count(client_id) == 1, f"{client_id} stored {ids.count(client_id)} times"
    assert [m["message"] for m in history] == [f"m{i}" for i in range(count)]  # one sender: send order
    seqs = [m["seq"] for m in history]
    for who in ("alice", "bob"):
        assert out["shown"][who] == seqs, f"{who} showed {out['shown'][who]}, stored {seqs}"


def test_every_credential_and_terminal_codes(fleet, tokens):
    out = node("test/basics.mjs", fleet.ws_url, tokens["alice"])
    assert out["subprotocol"] >= 0 and out["query"] >= 0
    assert out["tokenAsked"] == 2  # a token function is asked again on reconnect
    assert out["missing"] == {"code": 4404, "reason": out["missing"]["reason"], "willReconnect": False}
    assert out["missingReconnects"] == 0 and out["missingState"] == "closed"
    assert out["anonymous"]["code"] == 4401 and out["anonymous"]["willReconnect"] is False
    # alice is not staff: 4403 ends the client like any terminal code (closecodes.py).
    assert (out["forbidden"]["code"], out["forbidden"]["willReconnect"]) == (4403, False)
    assert out["forbiddenReconnects"] == 0 and out["forbiddenState"] == "closed"


def test_tcp_dropped_mid_send_every_message_shown_once_in_order_and_stored_once(fleet, tokens):
    room, count = new_room(fleet, tokens), 15
    out = node("test/drop.mjs", fleet.ws_url, room, tokens["alice"], tokens["bob"], "tcp", str(count))
    assert out["pendingAtDrop"] >= 1 and out["resent"] >= 1, out  # the drop left messages unacknowledged
    check_drop(fleet, tokens, room, out, count)


def test_gateways_killed_mid_send_every_message_shown_once_in_order_and_stored_once(fleet, tokens):
    room, count = new_room(fleet, tokens), 20
    proc = subprocess.Popen(
        ["node", "test/drop.mjs", fleet.ws_url, room, tokens["alice"], tokens["bob"], "kill", str(count)],
        cwd=JS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert json.loads(proc.stdout.readline()) == {"event": "sending"}
        for gateway in ("ws-gateway-0", "ws-gateway-1"):
            fleet.kill(gateway)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        proc.kill()
        fleet.wait_ready(time.time() + 30, ["ws-gateway-0", "ws-gateway-1"])
    assert proc.returncode == 0, stderr[-3000:]
    out = json.loads(stdout.strip().splitlines()[-1])
    assert out["resent"] >= 1, out  # sent during the outage, resent after it
    check_drop(fleet, tokens, room, out, count)
