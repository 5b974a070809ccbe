"""daphne_deflate.py: permessage-deflate is a setting (WS_PERMESSAGE_DEFLATE), not an
accident of daphne, which exposes none of autobahn's compression options (daphne#236,
daphne#331): off, a client's offer is refused; on, it is accepted and frames go out
compressed. Also with daphne_memory.py, which moves the accept callback onto the
protocol class, as production installs both."""

from __future__ import annotations

import zlib

import pytest

from ws_gateway.tests.wire import Wire, patched

OFFER = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}
TEXT = "compress me " * 50


async def handshake_and_frame(wire: Wire) -> tuple[dict, int, bytes]:
    headers = await wire.open(headers=OFFER)
    await wire.app.send({"type": "websocket.send", "text": TEXT})
    wire.turn()
    ((first_byte, payload),) = wire.frames(raw=True)
    return headers, first_byte, payload


@pytest.mark.parametrize("with_memory", [False, True], ids=["alone", "with daphne_memory"])
async def test_off_the_offer_is_refused_and_frames_are_plain(monkeypatch, with_memory):
    monkeypatch.setenv("WS_PERMESSAGE_DEFLATE", "0")
    with patched("daphne_deflate", *(["daphne_memory"] if with_memory else [])):
        wire = Wire()
        try:
            headers, first_byte, payload = await handshake_and_frame(wire)
        finally:
            wire.close()
    assert "sec-websocket-extensions" not in headers
    assert first_byte == 0x81 and payload == TEXT.encode()  # FIN + text, RSV1 clear


@pytest.mark.parametrize("with_memory", [False, True], ids=["alone", "with daphne_memory"])
async def test_on_the_offer_is_accepted_and_frames_are_compressed(monkeypatch, with_memory):
    monkeypatch.setenv("WS_PERMESSAGE_DEFLATE", "1")
    with patched("daphne_deflate", *(["daphne_memory"] if with_memory else [])):
        wire = Wire()
        try:
            headers, first_byte, payload = await handshake_and_frame(wire)
        finally:
            wire.close()
    assert headers["sec-websocket-extensions"].startswith("permessage-deflate")
    assert first_byte == 0x81 | 0x40  # RSV1: compressed (RFC 7692 6)
    assert len(payload) < len(TEXT)
    assert zlib.decompressobj(-zlib.MAX_WBITS).decompress(payload + b"\x00\x00\xff\xff") == TEXT.encode()
