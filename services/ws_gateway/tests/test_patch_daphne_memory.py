"""daphne_memory.py: what daphne and autobahn keep per open WebSocket, made smaller
without changing what the socket does: its input queue is a SocketQueue, autobahn's
~40 options live once on the protocol class (a protocol of another factory keeps its
own), and the handshake's headers are let go once the socket is open."""

from __future__ import annotations

import asyncio
import contextlib

from daphne.ws_protocol import WebSocketProtocol

from ws_gateway.socket_queue import SocketQueue
from ws_gateway.tests.wire import Wire, patched


def options_copied_into(protocol) -> set[str]:
    return set(WebSocketProtocol.CONFIG_ATTRS) & set(vars(protocol))


async def test_without_the_patch_each_socket_keeps_a_queue_its_options_and_its_headers():
    with patched():
        wire = Wire()
        try:
            await wire.open(headers={"X-Big": "y" * 2000})
            assert type(wire.protocol.application_queue) is asyncio.Queue
            assert len(options_copied_into(wire.protocol)) >= 20  # autobahn copies each per socket
            assert "maxMessagePayloadSize" in options_copied_into(wire.protocol)
            assert wire.protocol.http_headers and wire.app.scope["headers"]
        finally:
            wire.close()


async def test_with_the_patch_an_open_socket_keeps_none_of_them_and_still_works():
    with patched("daphne_memory"):
        wire = Wire()
        try:
            await wire.connect(headers={"X-Big": "y" * 2000})
            # The app reads the handshake's headers before it accepts (the consumer does).
            assert (b"x-big", b"y" * 2000) in wire.app.scope["headers"]
            await wire.accept()
            queue = wire.protocol.application_queue
            assert type(queue) is SocketQueue
            assert options_copied_into(wire.protocol) == set()
            assert wire.protocol.maxMessagePayloadSize == wire.factory.maxMessagePayloadSize
            assert wire.protocol.http_headers == {} and wire.app.scope["headers"] == []
            assert wire.protocol.http_request_data == b""

            # The socket behaves as before: frames both ways, through the SocketQueue.
            await wire.app.send({"type": "websocket.send", "text": "out"})
            wire.turn()
            assert wire.frames() == [("text", b"out")]
            wire.client_sends(masked_text(b"in"))
            assert await asyncio.wait_for(wire.app.receive(), 5) == {"type": "websocket.receive", "text": "in"}
        finally:
            wire.close()


async def test_a_protocol_of_another_factory_keeps_its_own_options():
    with patched("daphne_memory"):
        first = Wire()
        other = Wire()
        try:
            await first.open()
            # Closes with 1009 past 10 bytes instead of dropping TCP (autobahn's default).
            other.factory.setProtocolOptions(maxMessagePayloadSize=10, failByDrop=False)
            await other.open()
            assert first.protocol.maxMessagePayloadSize == first.factory.maxMessagePayloadSize != 10
            assert other.protocol.maxMessagePayloadSize == 10  # not the class's (the first factory's)
            # Its limits are the ones enforced: a longer message closes it with 1009.
            other.client_sends(masked_text(b"x" * 11))
            other.turn()
            (kind, payload), *_ = other.frames()
            assert kind == "close" and Wire.close_code(payload) == 1009
        finally:
            first.close()
            other.close()


async def test_http_requests_keep_asyncio_queues():
    with patched("daphne_memory"):
        wire = Wire()
        try:
            request = object()  # what daphne files an HTTP request's application under
            wire.server.connections[request] = {}
            queue = wire.server.create_application(request, {"type": "http", "path": "/"})
            assert type(queue) is asyncio.Queue
            app = wire.server.connections[request]["application_instance"]
            app.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await app
        finally:
            wire.close()


def masked_text(payload: bytes) -> bytes:
    """A client's text frame (clients must mask, RFC 6455 5.3); a zero mask keeps the
    payload readable."""
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload
