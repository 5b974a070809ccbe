"""twisted_writes.py: a frame daphne sends leaves on the socket at once when nothing is
queued, instead of on the reactor's next turn; whatever the kernel does not take waits
in Twisted's buffer, in order, and nothing is lost."""

from __future__ import annotations

from ws_gateway.tests.wire import Wire, patched


async def test_without_the_patch_a_frame_waits_for_the_reactor():
    with patched():
        wire = Wire()
        try:
            await wire.open()
            wire.protocol.serverSend("hello")
            assert wire.frames() == []  # buffered in Twisted, the socket registered for writing
            assert wire.transport in wire.reactor.getWriters()
            wire.turn()
            assert wire.frames() == [("text", b"hello")]
        finally:
            wire.close()


async def test_with_the_patch_a_frame_is_on_the_socket_before_the_reactor_turns():
    with patched("twisted_writes"):
        wire = Wire()
        try:
            await wire.open()
            wire.protocol.serverSend("hello")
            assert wire.frames() == [("text", b"hello")]
            assert wire.reactor.getWriters() == []  # nothing left to write: never registered
        finally:
            wire.close()


async def test_what_the_kernel_does_not_take_waits_in_order_and_arrives_whole():
    """A client that reads slowly: the first write fills the kernel's buffers, the rest
    of it and every later write must queue behind it (not jump ahead of it)."""
    with patched("twisted_writes"):
        wire = Wire(sndbuf=4096, rcvbuf=4096)
        try:
            await wire.open()
            big = "a" * 200_000
            wire.protocol.serverSend(big)
            assert wire.held() > 0  # the kernel took only part of it
            wire.protocol.serverSend("after")
            assert wire.transport in wire.reactor.getWriters()
            got = []
            for _ in range(10_000):
                got += wire.frames()
                if len(got) == 2:
                    break
                wire.turn()
            assert got == [("text", big.encode()), ("text", b"after")]
            assert wire.held() == 0
        finally:
            wire.close()
