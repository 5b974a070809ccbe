"""The campaign's accounting, without a fleet: a duplicate, a leak and a frame out of
order injected into what a socket reads are counted (campaign.py's readers, fed by a
fake socket), and history overlapping live frames is not a duplicate."""

from __future__ import annotations

import asyncio
import json
import types

import pytest
import websockets
from accounting import Ledger
from campaign import Load, Participant, listen, run_fault


def test_a_frame_shown_twice_on_one_socket_is_one_duplicate():
    ledger = Ledger()
    ledger.connected("alice")
    ledger.live("alice", "room", 1)
    ledger.live("alice", "room", 2)
    ledger.live("alice", "room", 2)
    ledger.live("alice", "room", 2, part=1)  # another part of seq 2: not a duplicate
    ledger.live("bob", "room", 2)  # another socket: its own count
    assert ledger.duplicated == 1
    assert ledger.duplicates() == [(("alice", "room", 2, 0), 2)]


def test_history_overlapping_live_frames_is_not_a_duplicate_and_a_reconnect_replaying_live_is():
    ledger = Ledger()
    ledger.connected("alice")
    ledger.live("alice", "room", 1)
    ledger.connected("alice")
    ledger.history("alice", "room", 1)  # catch-up after the reconnect: merged by seq
    assert ledger.duplicated == 0 and ledger.order_violations == []
    ledger.live("alice", "room", 1)  # pushed live again after the reconnect: shown twice
    assert ledger.duplicated == 1


def test_order_is_per_connection_and_stream():
    ledger = Ledger()
    ledger.connected("alice")
    ledger.live("alice", "room", 2)
    ledger.live("alice", "other", 1)  # another stream
    ledger.live("alice", "room", 1)  # back in time on the same connection
    assert ledger.order_violations == [("alice", "room", (2, 0), (1, 0))]
    ledger.connected("alice")
    ledger.live("alice", "room", 1, part="edit a")  # a new connection starts over
    ledger.live("alice", "room", 1, part="edit b")  # two edits of one seq, unnumbered
    ledger.live("alice", "notifications", 9, ordered=False)
    ledger.live("alice", "notifications", 3, ordered=False)
    assert len(ledger.order_violations) == 1


class FakeSocket:
    """What Participant._read calls: ws.recv(), fed a list of frames."""

    def __init__(self, frames: list[dict]):
        self.frames = [json.dumps(f) for f in frames]

    async def recv(self) -> str:
        if not self.frames:
            raise asyncio.CancelledError  # ends the reader
        return self.frames.pop(0)


class FakeClient:
    def __init__(self, frames):
        self.ws = FakeSocket(frames)


def msg(seq: int, text: str, user: str = "bob") -> dict:
    return {"type": "chat_message", "seq": seq, "user": user, "message": text}


async def read_all(p: Participant, frames: list[dict]) -> None:
    p.client = FakeClient(frames)
    with pytest.raises(asyncio.CancelledError):
        await p._read()


async def test_the_chat_reader_counts_a_message_delivered_twice_and_a_message_of_another_room():
    # The campaign's record() before the ledger dropped a second frame with a seq it
    # had seen (`if seq in self.seen: return`): this duplicate counted zero.
    ledger = Ledger()
    p = Participant(None, "r1", "alice", "tok", ledger)
    history = {"type": "history", "messages": [msg(1, "r1/bob:1")], "last_seq": 1}
    await read_all(p, [history, msg(1, "r1/bob:1"), msg(2, "r1/bob:2"), msg(2, "r1/bob:2"), msg(3, "r2/bob:1")])
    assert ledger.duplicated == 1, ledger.live_counts
    assert ledger.leaks == [("chat:r1:alice", "r2/bob:1 on r1")]


class Crashing(Load):
    """A load whose runner fails once the fault has struck (as a reader would on a
    frame it did not expect)."""

    name = "crashing"

    def runners(self, sending, stop):
        async def run():
            await asyncio.sleep(0.2)
            raise KeyError("seq")

        return [run()]


async def test_a_runner_that_fails_fails_the_row():
    # run_fault gathered its runners with return_exceptions=True before: this row passed.
    async def inject(loads):
        return "nothing"

    with pytest.raises(KeyError):
        await run_fault(None, {}, "none", inject, loads=(Crashing(None, {}),), warmup=0)


async def test_a_listening_socket_whose_reader_crashes_is_not_a_drop():
    # listen() counted a crashed reader as a dropped socket and reconnected.
    async def serve(ws):
        await ws.send('{"type": "surprise"}')
        await ws.wait_closed()

    async def read(client):
        frame = json.loads(await client.ws.recv())
        raise ValueError(frame["type"])

    holder = types.SimpleNamespace(ledger=Ledger(), name="x", drops=0, connected=asyncio.Event())
    async with websockets.serve(serve, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ValueError, match="surprise"):
            await asyncio.wait_for(listen(f"ws://127.0.0.1:{port}/", None, read, asyncio.Event(), holder), 10)
    assert holder.drops == 0
