"""What the gateway does with clients that misbehave slowly, and with long-lived ones.

* A slow client (a raw socket that completes the handshake and never reads) is closed
  with 4008 once ws-gateway holds more than WS_SEND_BUFFER_BYTES for it
  (ws_gateway/daphne_send_bound.py); the others in its room miss nothing. The socket
  goes straight to one ws-gateway process: through nginx, nginx's and the kernel's
  buffers would absorb megabytes first, and what is bounded here is the gateway's own.
* Group expiry does not apply: the `default` layer is RedisPubSubChannelLayer, whose
  groups are process-local subscriptions with no expiry (channels_redis's
  `group_expiry`, 24 h on the core layer, is silently ignored by it). A connection
  older than a short expiry still receives its room. ws-gateway closes sockets after
  daphne's --websocket_timeout (24 h) anyway; clients reconnect with ?since.
* A client that closes while an answer is on its way (its ping, then its close, in one
  write: daphne hands the gateway the ping after autobahn has already taken the close)
  costs the gateway nothing: the pong is dropped, no traceback. Before, every such
  reply raised `Disconnected: Attempt to send on a closed protocol` inside the consumer
  (make faults' reconnect storms logged dozens).
* A dead peer (the handshake, then never a frame, not even a pong) is dropped by
  daphne's ping timeout (WS_PING_INTERVAL_SECONDS + WS_PING_TIMEOUT_SECONDS), through
  nginx as a user's socket would be (make faults only: it waits 50 s).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import time
import urllib.request
import uuid

import httpx
import pytest
from campaign import FULL, Row
from fleetenv import tracebacks
from metricsutil import sample
from wsclient import Client


def new_room(fleet, tokens) -> str:
    slug = "g" + uuid.uuid4().hex[:10]
    res = httpx.post(
        f"{fleet.url}/api/chat/rooms/", json={"name": slug}, headers={"Authorization": f"Bearer {tokens['alice']}"}
    )
    assert res.status_code == 201, res.text
    return slug


def closes_4008(fleet, program: str) -> float:
    port = fleet.program(program).metrics_port
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("switchboard_gateway_closes_total{") and 'code="4008"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def stuck_socket(port: int, path: str, tok: str, origin: str) -> socket.socket:
    """A WebSocket that completes the handshake and then never reads."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n"
            f"Authorization: Bearer {tok}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


async def test_a_client_that_stops_reading_is_closed_with_4008_and_others_miss_nothing(fleet, tokens, fault_report):
    room = new_room(fleet, tokens)
    before = closes_4008(fleet, "ws-gateway-0")
    stuck = stuck_socket(fleet.program("ws-gateway-0").http_port, f"/ws/chat/{room}/", tokens["admin"], fleet.url)
    bob = await Client.connect(f"{fleet.ws_url}/ws/chat/{room}/", tokens["bob"])
    await bob.next_of("history")
    senders = [await Client.connect(f"{fleet.ws_url}/ws/chat/{room}/", tokens[u]) for u in ("alice", "bob")]
    for s in senders:
        await s.next_of("history")
    sent = 0
    # 4 KB messages at the per-connection rate until the gateway gives up on the stuck socket.
    for _ in range(150):
        for s in senders:
            await s.send({"type": "chat_message", "message": f"{sent:06d}" + "x" * 3990, "client_id": f"s{sent}"})
            sent += 1
        await asyncio.sleep(0.12)
        if closes_4008(fleet, "ws-gateway-0") > before:
            break
    assert closes_4008(fleet, "ws-gateway-0") == before + 1
    # The stuck socket is gone: reading now ends in EOF or a reset, after at most the
    # bounded backlog and a close frame.
    stuck.settimeout(10)
    received = 0
    try:
        while chunk := stuck.recv(65536):
            received += len(chunk)
    except ConnectionResetError:
        pass
    stuck.close()
    # Everyone else got every message, each sender's in the order it sent them.
    got = [int((await bob.next_of("chat_message", timeout=15))["message"][:6]) for _ in range(sent)]
    assert sorted(got) == list(range(sent))
    for parity in (0, 1):  # alice sent the even numbers, bob the odd ones
        mine = [n for n in got if n % 2 == parity]
        assert mine == sorted(mine)
    # Acknowledged = echoed to its own sender; the stuck socket is the one dropped.
    acked = 0
    for parity, s in enumerate(senders):
        echoes = [int((await s.next_of("chat_message", timeout=15))["message"][:6]) for _ in range(sent)]
        acked += sum(1 for n in echoes if n % 2 == parity)
    delivered = len(set(got))
    fault_report.rows.append(
        Row("slow client (4008)", sent, acked, delivered, acked - delivered, len(got) - delivered, 1, 0.0)
    )
    for c in (*senders, bob):
        await c.close()


async def test_a_connection_older_than_a_short_group_expiry_still_receives(fleet, tokens, fault_report):
    room = new_room(fleet, tokens)
    old = await Client.connect(f"{fleet.ws_url}/ws/chat/{room}/", tokens["bob"])
    await old.next_of("history")
    await asyncio.sleep(8)  # longer than the few seconds a test would set as group_expiry
    alice = await Client.connect(f"{fleet.ws_url}/ws/chat/{room}/", tokens["alice"])
    await alice.next_of("history")
    await alice.send({"type": "chat_message", "message": "still subscribed", "client_id": "old1"})
    assert (await old.next_of("chat_message", timeout=10))["message"] == "still subscribed"
    fault_report.rows.append(Row("connection older than a short group expiry", 1, 1, 1, 0, 0, 0, 0.0))
    await alice.close()
    await old.close()


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (payloads under 126 bytes)."""
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def gateway_tracebacks(fleet) -> list[str]:
    return [t for t in tracebacks(fleet.run_dir / "logs") if t.startswith("ws-gateway")]


def open_sockets(fleet) -> float:
    """Sockets the ws-gateway processes count as open (their own gauges)."""
    names = [p.name for p in fleet.programs if p.service == "ws-gateway"]
    return sum(sample(fleet, n, "switchboard_gateway_connections") for n in names)


def test_a_client_closing_while_its_answer_is_on_the_way_costs_no_traceback(fleet, tokens):
    before, held = gateway_tracebacks(fleet), open_sockets(fleet)
    for _ in range(50):  # each a race the gateway lost at times (1 to 17 of 20 before the fix)
        s = stuck_socket(fleet.gateway_port, "/ws/tasks/", tokens["bob"], fleet.url)
        ping = client_frame(0x1, b'{"type": "ping"}')
        close = client_frame(0x8, (1000).to_bytes(2, "big"))
        s.sendall(ping + close)  # the pong is sent after autobahn took the close
        s.settimeout(10)
        with contextlib.suppress(ConnectionResetError):
            while s.recv(65536):
                pass
        s.close()
    # Each socket is let go as any closed one is: not still counted open (against its
    # user's cap of sockets, in presence), which a consumer that died never did.
    deadline = time.monotonic() + 15
    while open_sockets(fleet) > held and time.monotonic() < deadline:
        time.sleep(0.2)
    assert open_sockets(fleet) == held
    # daphne logs a consumer's exception when its checker next runs (every second).
    time.sleep(2)
    assert gateway_tracebacks(fleet) == before


def server_frames(data: bytes) -> list[int]:
    """The opcodes of the unmasked frames a server sent, in order (a partial tail is left)."""
    opcodes, i = [], 0
    while i + 2 <= len(data):
        length, head = data[i + 1] & 0x7F, 2
        if length == 126:
            length, head = int.from_bytes(data[i + 2 : i + 4], "big"), 4
        elif length == 127:
            length, head = int.from_bytes(data[i + 2 : i + 10], "big"), 10
        if i + head + length > len(data):
            break
        opcodes.append(data[i] & 0x0F)
        i += head + length
    return opcodes


@pytest.mark.skipif(not FULL, reason="waits WS_PING_INTERVAL + WS_PING_TIMEOUT (50 s by default): make faults")
def test_a_peer_that_never_answers_is_dropped_by_the_ping_timeout(fleet, tokens):
    # Through nginx, as a client would be: a handshake, then nothing, not even a pong.
    # It reads, so what is tested is the ping timeout, not the slow-client bound.
    interval, timeout = (float(fleet.setting(n)) for n in ("WS_PING_INTERVAL_SECONDS", "WS_PING_TIMEOUT_SECONDS"))
    s = stuck_socket(fleet.gateway_port, "/ws/tasks/", tokens["bob"], fleet.url)
    s.settimeout(interval + timeout + 30)  # only bounds a failure
    received = b""
    try:
        while chunk := s.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"still open {interval + timeout + 30:.0f} s after the handshake")
    finally:
        s.close()
    assert 0x9 in server_frames(received), "closed without pinging first"
