"""The gateway's side of two gateway-protocol additions collab relies on, through a real
socket (channels' communicator) and a real Redis channel layer:

* gw.accept frames may be bytes: they reach the client as binary frames, in order with
  the text ones;
* gw.accept `kinds` limits the group frames a socket is sent to text or binary, so one
  group can carry two protocols (collab's Yjs and JSON clients); frames sent to the
  socket itself always go through.
"""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from switchboard import routes, tokens

pytestmark = pytest.mark.usefixtures("channel_layers")  # a fresh registry: conftest.py


async def open_socket(path: str) -> tuple[WebsocketCommunicator, dict]:
    from ws_gateway.asgi import application

    token = tokens.issue(tokens.Identity(1, "alice"))
    socket = WebsocketCommunicator(application, path, headers=[(b"authorization", f"Bearer {token}".encode())])
    connected, _ = await socket.connect(timeout=5)
    assert connected
    inbox = routes.load().match_websocket(path).inbox_channel(1)
    command = await asyncio.wait_for(get_channel_layer("inbox").receive(inbox), 5)
    assert command["type"] == "gw.connect"
    return socket, command


async def test_accept_sends_binary_and_text_frames_in_order():
    socket, command = await open_socket("/ws/collab/41/")
    layer = get_channel_layer()
    await layer.send(command["conn"], {"type": "gw.accept", "frames": [b"\x00\x00\x01\x00", '{"type":"hello"}']})
    assert await socket.receive_output(5) == {"type": "websocket.send", "bytes": b"\x00\x00\x01\x00"}
    assert await socket.receive_output(5) == {"type": "websocket.send", "text": '{"type":"hello"}'}
    await socket.disconnect()


@pytest.mark.parametrize("kinds, delivered", [(["bytes"], "bytes"), (["text"], "text")])
async def test_kinds_filters_group_frames_but_not_frames_to_the_socket(kinds, delivered):
    socket, command = await open_socket("/ws/collab/42/")
    layer = get_channel_layer()
    group = routes.load().match_websocket("/ws/collab/42/").group(1)
    await layer.send(command["conn"], {"type": "gw.accept", "frames": [], "kinds": kinds})
    await asyncio.sleep(0.2)  # the accept is handled before the group frames below
    await layer.group_send(group, {"type": "gw.send", "group": group, "text": '{"type":"edit"}'})
    await layer.group_send(group, {"type": "gw.send", "group": group, "bytes": b"\x00\x02\x00"})
    await layer.send(command["conn"], {"type": "gw.send", "text": '{"type":"ack"}'})
    got = [await socket.receive_output(5)]
    got.append(await socket.receive_output(5))
    assert await socket.receive_nothing(0.3)
    expected = {"text": '{"type":"edit"}', "bytes": b"\x00\x02\x00"}[delivered]
    assert [m.get("text", m.get("bytes")) for m in got] == [expected, '{"type":"ack"}']
    await socket.disconnect()


async def test_a_binary_only_socket_over_its_limits_is_closed_never_sent_an_error_frame():
    socket, command = await open_socket("/ws/collab/43/")
    await get_channel_layer().send(command["conn"], {"type": "gw.accept", "frames": [], "kinds": ["bytes"]})
    await asyncio.sleep(0.2)
    for _ in range(100):  # far above the route's burst and the user's
        await socket.send_input({"type": "websocket.receive", "bytes": b"\x01\x01\x00"})
    output = await socket.receive_output(5)
    assert output == {"type": "websocket.close", "code": 4029, "reason": "rate limited, reconnect after a backoff"}


async def test_a_yjs_client_over_its_limits_before_it_is_accepted_is_closed_too():
    """The Yjs client syncs before collab accepts it; a JSON error frame then crashed
    y-websocket (issue 16, item 7): the socket's kind was only known from gw.accept."""
    socket, _ = await open_socket("/ws/collab/44/")
    for _ in range(100):
        await socket.send_input({"type": "websocket.receive", "bytes": b"\x01\x01\x00"})
    output = await socket.receive_output(5)
    assert output["type"] == "websocket.close" and output["code"] == 4029


async def test_an_accept_after_the_gateway_closed_a_connecting_socket_sends_nothing():
    socket, command = await open_socket("/ws/collab/45/")
    for _ in range(100):
        await socket.send_input({"type": "websocket.receive", "bytes": b"\x01\x01\x00"})
    assert (await socket.receive_output(5))["code"] == 4029
    await get_channel_layer().send(command["conn"], {"type": "gw.accept", "frames": [b"\x00\x00\x01\x00"]})
    assert await socket.receive_nothing(0.5)
