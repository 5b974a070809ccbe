"""daphne_close_codes.py: an application's close with one of the protocol's own server
codes that closecodes.CloseCode declares (1001, 1009, 1011, 1013) reaches the client
with that code, and one the table does not declare (1012) is refused as upstream does; without the
patch autobahn's sendClose() refuses every code but 1000 and 3000-4999
(autobahn-python#1642), so daphne raises and the client gets no close frame at all."""

from __future__ import annotations

import pytest

from switchboard.closecodes import CloseCode
from ws_gateway.tests.wire import Wire, patched

# The protocol's own codes Switchboard sends (closecodes.py), which clients rely on; not
# the patch's own list, so an emptied list fails here instead of testing nothing.
PROTOCOL_CODES = sorted(int(c) for c in CloseCode if 1000 < c < 3000)


async def closed_with(code: int) -> list[tuple[str, bytes]]:
    wire = Wire()
    try:
        await wire.open()
        await wire.app.send({"type": "websocket.close", "code": code})
        wire.turn()
        return wire.frames()
    finally:
        wire.close()


async def test_without_the_patch_try_again_later_cannot_be_sent():
    with patched(), pytest.raises(Exception, match="invalid close code 1013"):
        await closed_with(1013)


def test_switchboard_sends_protocol_codes():
    assert PROTOCOL_CODES  # 1001 drain, 1009 too big, 1011, 1013 try again later


@pytest.mark.parametrize("code", PROTOCOL_CODES)
async def test_with_the_patch_every_protocol_code_switchboard_sends_reaches_the_client(code):
    with patched("daphne_close_codes"):
        (kind, payload), *rest = await closed_with(code)
    assert kind == "close" and Wire.close_code(payload) == code and rest == []


@pytest.mark.parametrize("code", [1000, 4008, 4401])
async def test_with_the_patch_application_codes_go_through_daphne_as_before(code):
    with patched("daphne_close_codes"):
        (kind, payload), *rest = await closed_with(code)
    assert kind == "close" and Wire.close_code(payload) == code and rest == []


# Registered server codes (RFC 6455 / IANA) that closecodes.CloseCode does not declare:
# Switchboard never sends them, so the daphne layer must not speak them either.
UNDECLARED = sorted({1008, 1012, 1014} - {int(c) for c in CloseCode})


@pytest.mark.parametrize("code", UNDECLARED)
async def test_with_the_patch_a_code_the_table_does_not_declare_is_refused_as_upstream(code):
    """The daphne layer reads closecodes.CloseCode, the one table: a code only a second
    list would know (1012 was in the patch's own) stays refused, as autobahn refuses it."""
    with patched("daphne_close_codes"), pytest.raises(Exception, match=f"invalid close code {code}"):
        await closed_with(code)
