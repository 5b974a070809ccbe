"""daphne_send_bound.py: a client that stops reading makes daphne hold at most about
WS_SEND_BUFFER_BYTES for it, then is closed with 4008 (SLOW_CONSUMER), which reaches it
behind the frames already queued; without the patch Twisted's buffer takes every frame
(daphne#170)."""

from __future__ import annotations

import select
import time

from switchboard.closecodes import CloseCode
from ws_gateway import daphne_send_bound
from ws_gateway.tests.wire import Wire, patched

LIMIT = 64 * 1024
FRAME = "x" * 8192
SENT = 100  # 800 KB for a client that reads nothing


async def stuck_client(wire: Wire) -> int:
    """Send SENT frames to a client that reads none of them, the reactor writing what
    the kernel takes between frames; returns the most Twisted held at once."""
    await wire.open()
    most = 0
    for _ in range(SENT):
        await wire.app.send({"type": "websocket.send", "text": FRAME})
        wire.turn()
        most = max(most, wire.held())
    return most


def read_all(wire: Wire, done) -> list[tuple[str, bytes]]:
    """The client reads again until done(frames so far); the reactor writes meanwhile."""
    got: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + 10  # a guard against a hang, not a measurement
    while not done(got) and time.monotonic() < deadline:
        wire.turn()
        got += wire.frames()
        select.select([wire.client], [], [], 0.01)
    return got


def closed(got) -> bool:
    return bool(got) and got[-1][0] == "close"


async def test_without_the_patch_every_frame_is_held_for_a_client_that_does_not_read():
    with patched():
        wire = Wire(sndbuf=4096, rcvbuf=4096)
        try:
            most = await stuck_client(wire)
            assert most > SENT * len(FRAME) // 2  # most of what was sent, in the process's heap
            got = read_all(wire, lambda got: len(got) >= SENT)
            assert [kind for kind, _ in got] == ["text"] * SENT
            wire.turn()
            assert wire.frames() == []  # and no close
        finally:
            wire.close()


async def test_with_the_patch_a_stuck_client_is_closed_4008_after_the_limit(monkeypatch):
    monkeypatch.setenv("WS_SEND_BUFFER_BYTES", str(LIMIT))
    with patched("daphne_send_bound"):
        wire = Wire(sndbuf=4096, rcvbuf=4096)
        try:
            most = await stuck_client(wire)
            # About the limit plus one frame (what the kernel holds counts too).
            assert most <= LIMIT + len(FRAME) + 64
            got = read_all(wire, closed)
            kinds = [kind for kind, _ in got]
            assert kinds[-1] == "close" and set(kinds[:-1]) == {"text"}
            assert Wire.close_code(got[-1][1]) == CloseCode.SLOW_CONSUMER
            # Frames past the limit were dropped, not queued: the client re-reads history.
            assert len(kinds) - 1 < SENT
            assert all(payload == FRAME.encode() for _, payload in got[:-1])  # whole, in order
        finally:
            wire.close()


async def test_with_the_patch_a_client_that_reads_is_never_closed(monkeypatch):
    monkeypatch.setenv("WS_SEND_BUFFER_BYTES", str(LIMIT))
    with patched("daphne_send_bound"):
        wire = Wire(sndbuf=4096, rcvbuf=4096)
        try:
            await wire.open()
            got = []
            for _ in range(SENT):
                await wire.app.send({"type": "websocket.send", "text": FRAME})
                got += read_all(wire, lambda got: len(got) == 1)
            assert [kind for kind, _ in got] == ["text"] * SENT
        finally:
            wire.close()


async def test_without_the_patch_the_gateways_broadcast_path_still_sends():
    """WS_PATCHES_DISABLE=daphne_send_bound (the bench's "off"): the consumer's direct
    group path asks admit() before each prepared frame, and must then send unbounded
    as daphne does, not fail on the patch's missing per-socket state."""
    with patched():
        wire = Wire()
        try:
            await wire.open()
            frame = wire.factory.prepareMessage(FRAME.encode())
            for _ in range(3):
                if daphne_send_bound.admit(wire.protocol, len(frame.payloadHybi)):
                    wire.protocol.sendPreparedMessage(frame)
            got = read_all(wire, lambda got: len(got) >= 3)
            assert got == [("text", FRAME.encode())] * 3
        finally:
            wire.close()
