"""The gateway consumer, driven in process; the test plays the owning service by
reading its inbox shard and answering on the connection's channel."""

import asyncio

import orjson
import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from switchboard.routes import shard_channel
from ws_gateway.consumer import GatewayConsumer

pytestmark = pytest.mark.usefixtures("channel_layers")


def communicator(path="/ws/chat/lobby/", token=None, origin=None, query=""):
    headers = []
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if origin:
        headers.append((b"origin", origin.encode()))
    return WebsocketCommunicator(GatewayConsumer.as_asgi(), path + query, headers=headers)


async def close_code(comm) -> int:
    out = await comm.receive_output(5)
    assert out["type"] == "websocket.close"
    return out["code"]


async def next_command(room="lobby", timeout=5):
    return await asyncio.wait_for(get_channel_layer("inbox").receive(shard_channel("chat", room)), timeout)


async def accepted(token, frames=(), watermarks=None):
    """A connection the test (as the chat service) has accepted."""
    comm = communicator(token=token)
    assert (await comm.connect())[0]
    cmd = await next_command()
    assert cmd["type"] == "gw.connect"
    await get_channel_layer().send(
        cmd["conn"], {"type": "gw.accept", "frames": list(frames), "watermarks": watermarks or {}}
    )
    return comm, cmd


async def test_no_token_closes_4401():
    comm = communicator()
    assert (await comm.connect())[0]
    assert await close_code(comm) == 4401


async def test_foreign_origin_is_refused_at_the_handshake(token_for):
    comm = communicator(token=token_for(), origin="https://evil.example")
    connected, _ = await comm.connect()
    assert not connected


async def test_no_origin_with_a_token_is_allowed(token_for):
    comm, cmd = await accepted(token_for())
    assert cmd["user"]["username"] == "alice"
    await comm.disconnect()


async def test_unknown_route_closes_4404(token_for):
    comm = communicator("/ws/nowhere/", token=token_for())
    assert (await comm.connect())[0]
    assert await close_code(comm) == 4404


async def test_silent_service_closes_1013(token_for, monkeypatch):
    monkeypatch.setenv("CONNECT_TIMEOUT_SECONDS", "0.3")
    comm = communicator(token=token_for())
    assert (await comm.connect())[0]
    assert await close_code(comm) == 1013


async def test_a_connect_that_times_out_is_counted_once(token_for, monkeypatch):
    from prometheus_client import REGISTRY

    def attempts():
        return {
            outcome: REGISTRY.get_sample_value(
                "switchboard_gateway_connects_total", {"route": "chat", "outcome": outcome}
            )
            or 0
            for outcome in ("service_timeout", "timeout")
        }

    before = attempts()
    monkeypatch.setenv("CONNECT_TIMEOUT_SECONDS", "0.3")
    comm = communicator(token=token_for())
    assert (await comm.connect())[0]
    assert await close_code(comm) == 1013
    after = attempts()
    assert {k: after[k] - before[k] for k in after} == {"service_timeout": 1, "timeout": 0}


async def test_service_rejection_becomes_the_close_code(token_for):
    comm = communicator(token=token_for())
    assert (await comm.connect())[0]
    cmd = await next_command()
    await get_channel_layer().send(cmd["conn"], {"type": "gw.reject", "code": 4404})
    assert await close_code(comm) == 4404


async def test_accept_sends_first_frames_then_relays_validated_frames(token_for):
    comm, cmd = await accepted(token_for(), frames=['{"type": "history", "messages": []}'])
    assert await comm.receive_json_from() == {"type": "history", "messages": []}
    assert cmd["params"] == {"room": "lobby"}
    await comm.send_json_to({"type": "chat_message", "message": "hi", "junk": 1})
    relayed = await next_command()
    assert relayed["type"] == "gw.receive"
    assert relayed["frame"] == {"type": "chat_message", "message": "hi"}
    await comm.disconnect()
    assert (await next_command())["type"] == "gw.disconnect"


async def test_query_token_is_not_forwarded_but_other_params_are(token_for):
    comm = communicator(query=f"?token={token_for()}&since=5")
    assert (await comm.connect())[0]
    cmd = await next_command()
    assert cmd["params"] == {"room": "lobby", "since": 5}
    await comm.disconnect()


@pytest.mark.parametrize("query", ["?room=other", "?since=%C2%B2", "?since=1&since=2", "?since=007"])
async def test_a_query_naming_the_path_or_a_bad_typed_value_closes_4400(token_for, query):
    comm = communicator(token=token_for(), query=query)
    assert (await comm.connect())[0]
    assert await close_code(comm) == 4400


async def test_a_malformed_cookie_is_skipped_and_the_session_cookie_still_read(token_for, monkeypatch):
    """`a@b=1` made SimpleCookie raise: a 500 on every handshake (issue 16, item 3)."""
    from ws_gateway import wsauth

    seen = []

    async def session_identity(key):
        seen.append(key)
        return None

    monkeypatch.setattr(wsauth, "_session_identity", session_identity)
    headers = [(b"origin", b"http://127.0.0.1:8080"), (b"cookie", b"a@b=1; sessionid=abc; x y=2")]
    comm = WebsocketCommunicator(GatewayConsumer.as_asgi(), "/ws/chat/lobby/", headers=headers)
    assert (await comm.connect())[0]
    assert await close_code(comm) == 4401
    assert seen == ["abc"]


async def test_bad_frames_get_error_frames_and_the_socket_stays_open(token_for):
    comm, _ = await accepted(token_for())
    for bad, code in [
        ("nope", "invalid_json"),
        ('{"type": "x"}', "unknown_type"),
        ('{"type": "chat_message"}', "invalid_frame"),
    ]:
        await comm.send_to(text_data=bad)
        frame = await comm.receive_json_from()
        assert (frame["type"], frame["code"]) == ("error", code)
    await comm.send_to(bytes_data=b"\x00\x01")
    assert (await comm.receive_json_from())["code"] == "binary_not_supported"
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from() == {"type": "pong"}
    await comm.disconnect()


async def test_rate_limit_answers_with_retry_after(token_for, monkeypatch):
    monkeypatch.setenv("RATE_CONN_BURST", "3")
    monkeypatch.setenv("RATE_CONN_PER_SECOND", "1")
    comm, _ = await accepted(token_for())
    for _ in range(3):
        await comm.send_json_to({"type": "typing"})
    await comm.send_json_to({"type": "typing"})
    frame = await comm.receive_json_from()
    assert frame["code"] == "rate_limited" and frame["retry_after"] > 0
    await comm.disconnect()


async def test_group_frames_respect_watermark_and_exclusions(token_for):
    comm, cmd = await accepted(token_for(user_id=1), watermarks={"chat.room.lobby": 10})
    layer = get_channel_layer()
    group = "chat.room.lobby"
    await layer.group_send(group, {"type": "gw.send", "group": group, "seq": 10, "text": '{"n": 10}'})
    await layer.group_send(group, {"type": "gw.send", "group": group, "exclude_user": 1, "text": '{"n": "x"}'})
    await layer.group_send(group, {"type": "gw.send", "group": group, "seq": 11, "text": '{"n": 11}'})
    assert orjson.loads(await comm.receive_from()) == {"n": 11}
    await comm.disconnect()


async def test_unknown_channel_message_does_not_kill_the_socket(token_for):
    comm, cmd = await accepted(token_for())
    await get_channel_layer().send(cmd["conn"], {"type": "user_typing", "user": "x"})
    await get_channel_layer().send(cmd["conn"], {"type": "gw.send", "text": '{"ok": true}'})
    assert await comm.receive_json_from() == {"ok": True}
    await comm.disconnect()


async def test_staff_only_route_closes_4403_for_others(token_for, settings):
    from switchboard import routes

    table = routes.load()
    staff_routes = [r for r in table.websocket if r.staff_only]
    if not staff_routes:
        pytest.skip("no staff-only route in the table yet")
    path = staff_routes[0].path.format(**{k: "x" for k in ("room", "doc")})
    comm = communicator(path, token=token_for())
    assert (await comm.connect())[0]
    assert await close_code(comm) == 4403


async def test_a_stream_frame_is_sent_once_and_a_skipped_seq_asks_for_a_reconnect(token_for):
    """One seq may be several frames (parts); a frame sent again (a resend's broadcast)
    is dropped; a seq that skips one the socket never got closes it with 4000, so its
    reconnect replays what the at-most-once layer lost."""
    comm, cmd = await accepted(token_for(user_id=1), watermarks={"chat.room.lobby": 10})
    layer = get_channel_layer()
    group = "chat.room.lobby"

    async def send(seq, n, part=0, **extra):
        message = {"type": "gw.send", "group": group, "seq": seq, "text": orjson.dumps({"n": n}).decode(), **extra}
        if part:
            message["part"] = part
        await layer.group_send(group, message)

    await send(11, "11.0")
    await send(11, "11.1", part=1)
    await send(11, "11.0 again")
    await send(12, "12 for someone else", exclude_conn=cmd["conn"])  # the stream moves on all the same
    await send(13, "13")
    assert [(await comm.receive_json_from())["n"] for _ in range(3)] == ["11.0", "11.1", "13"]
    await send(15, "15: 14 never came")
    assert await close_code(comm) == 4000


async def test_a_stream_the_socket_has_no_watermark_for_is_sent_as_is(token_for):
    comm, cmd = await accepted(token_for(user_id=1))
    group = "chat.room.lobby"
    for seq in (5, 9, 9):
        await get_channel_layer().group_send(group, {"type": "gw.send", "group": group, "seq": seq, "text": str(seq)})
    assert [await comm.receive_from() for _ in range(3)] == ["5", "9", "9"]
    await comm.disconnect()


@pytest.mark.parametrize(
    "lost",
    [
        "the last parts: the worker died after part 0",  # parts 1, 2 never came; seq 12 did
        "a middle part",  # part 1 lost, part 2 came
        "the first part",  # seq 12's part 0 lost, its part 1 came
    ],
)
async def test_a_part_of_a_seq_that_never_came_asks_for_a_reconnect(token_for, lost):
    """collab publishes one stored update as part 0 (Yjs) and parts 1..n (JSON edits),
    one group_send each, with the count in `parts`: a worker killed between them, or a
    part lost on the way, leaves JSON sockets without the edit, and no seq is skipped.
    The gateway knows how many parts a seq has and closes with 4000 (the reconnect
    brings the document as stored)."""
    comm, cmd = await accepted(token_for(user_id=1), watermarks={"chat.room.lobby": 10})
    layer = get_channel_layer()
    group = "chat.room.lobby"

    async def send(seq, part, parts):
        message = {"type": "gw.send", "group": group, "seq": seq, "parts": parts, "text": f"{seq}.{part}"}
        if part:
            message["part"] = part
        await layer.group_send(group, message)

    await send(11, 0, 2)
    await send(11, 1, 2)  # a whole seq: both parts
    if lost.startswith("the last"):
        await send(12, 0, 3)
        await send(13, 0, 1)
        expected = ["11.0", "11.1", "12.0"]
    elif lost == "a middle part":
        await send(12, 0, 3)
        await send(12, 2, 3)
        expected = ["11.0", "11.1", "12.0"]
    else:
        await send(12, 1, 2)
        expected = ["11.0", "11.1"]
    assert [await comm.receive_from() for _ in expected] == expected
    assert await close_code(comm) == 4000
