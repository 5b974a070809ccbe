"""drain.py: on SIGTERM a gateway stops listening, says 503 on /readyz, closes every open
socket with 1001 GOING_AWAY and only then hands over to Twisted's own SIGTERM handler
(which stops daphne). daphne has no drain of its own: Twisted's handler stops the
reactor at once (daphne#38). Here with a real gateway socket (GatewayConsumer on the
test's Redis), a real listening tcp.Port and a real SIGTERM to this process."""

from __future__ import annotations

import asyncio
import signal
import socket

import pytest
from channels.testing import HttpCommunicator, WebsocketCommunicator
from twisted.internet import protocol, tcp
from twisted.internet.testing import MemoryReactorClock

from switchboard.closecodes import CloseCode
from ws_gateway import connections, drain
from ws_gateway.consumer import GatewayConsumer

pytestmark = pytest.mark.usefixtures("channel_layers")


@pytest.fixture(autouse=True)
def not_draining(monkeypatch):
    monkeypatch.setattr(drain, "draining", False)


async def open_socket(token) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        GatewayConsumer.as_asgi(), "/ws/notifications/", headers=[(b"authorization", f"Bearer {token}".encode())]
    )
    comm.scope["client"] = ["10.1.2.3", 5000]
    assert (await comm.connect())[0]
    assert await comm.receive_nothing(0.5)  # admitted, waiting for the service
    return comm


async def test_sigterm_stops_listening_closes_sockets_1001_then_hands_over_to_twisted(token_for):
    reactor = MemoryReactorClock()
    port = tcp.Port(0, protocol.Factory(), reactor=reactor)
    port.startListening()
    listening = ("127.0.0.1", port.getHost().port)
    socket.create_connection(listening, timeout=2).close()  # it accepts connections

    handed_over: list[int] = []
    # What the reactor installed at startup (Twisted's: stop the reactor now).
    before = signal.signal(signal.SIGTERM, lambda signum, frame: handed_over.append(signum))
    try:
        drain.take_over(reactor)
        comms = [await open_socket(token_for()), await open_socket(token_for("bob", user_id=2))]

        signal.raise_signal(signal.SIGTERM)
        for comm in comms:
            out = await comm.receive_output(5)
            assert out["type"] == "websocket.close" and out["code"] == CloseCode.GOING_AWAY
        reactor.advance(0)  # the reactor's next turn closes the listening socket
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(listening, timeout=2)
        assert handed_over == []  # Twisted's handler waits until the clients have gone

        for comm in comms:
            await comm.disconnect()  # the clients answer the close
        for _ in range(100):
            if handed_over:
                break
            await asyncio.sleep(0.05)
        assert handed_over == [signal.SIGTERM]
        assert connections.registry.open == {}

        signal.raise_signal(signal.SIGTERM)  # a second SIGTERM goes straight to Twisted's
        await asyncio.sleep(0)
        assert handed_over == [signal.SIGTERM, signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, before)
        if port.connected:
            port.stopListening()
            reactor.advance(0)


async def inner(scope, receive, send):
    """The gateway's own application: answers every HTTP request 200, accepts sockets."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
    else:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()


async def test_while_draining_readyz_is_503_and_a_late_websocket_is_refused(monkeypatch):
    app = drain.guard(inner)
    assert (await HttpCommunicator(app, "GET", "/readyz").get_response())["status"] == 200
    before = WebsocketCommunicator(app, "/ws/chat/lobby/")
    assert (await before.connect())[0] is True
    await before.disconnect()

    monkeypatch.setattr(drain, "draining", True)
    response = await HttpCommunicator(app, "GET", "/readyz").get_response()
    assert response["status"] == 503 and response["body"] == b"draining\n"
    assert (await HttpCommunicator(app, "GET", "/healthz").get_response())["status"] == 200  # still alive
    connected, code = await WebsocketCommunicator(app, "/ws/chat/lobby/").connect()
    assert connected is False and code == CloseCode.GOING_AWAY  # before accept: daphne answers 403
