"""Client frames: validated once, with an error code a client can act on."""

import pytest

from switchboard.errors import ErrorCode
from switchboard.protocol import ChatMessage, FrameError, Ping, error_frame, parse_client_frame


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("not json", ErrorCode.INVALID_JSON),
        ("[1, 2]", ErrorCode.INVALID_FRAME),
        ('{"type": 3}', ErrorCode.INVALID_FRAME),
        ('{"type": "dance"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": "chat_message"}', ErrorCode.INVALID_FRAME),
        ('{"type": "chat_message", "message": 5}', ErrorCode.INVALID_FRAME),
        ('{"type": "chat_message", "message": ""}', ErrorCode.INVALID_FRAME),
        ('{"type": "chat_message", "message": "hi", "client_id": "' + "x" * 65 + '"}', ErrorCode.INVALID_FRAME),
    ],
)
def test_bad_frames_raise_with_their_code(text, code):
    with pytest.raises(FrameError) as err:
        parse_client_frame("chat", text)
    assert err.value.code == code


def test_chat_frames_of_the_seed_parse():
    msg = parse_client_frame("chat", '{"type": "chat_message", "message": "hi", "extra": 1}')
    assert isinstance(msg, ChatMessage) and msg.message == "hi"
    assert "extra" not in msg.model_dump()  # nothing unvalidated travels on
    assert isinstance(parse_client_frame("chat", '{"type": "ping"}'), Ping)


def test_a_frame_type_of_another_route_is_unknown_here():
    with pytest.raises(FrameError) as err:
        parse_client_frame("tasks", '{"type": "chat_message", "message": "hi"}')
    assert err.value.code == ErrorCode.UNKNOWN_TYPE


def test_error_frame_carries_the_seeds_error_key_and_retry_after():
    import orjson

    data = orjson.loads(error_frame(ErrorCode.RATE_LIMITED, "slow down", 0.25))
    assert data == {
        "type": "error",
        "code": "rate_limited",
        "message": "slow down",
        "error": "slow down",
        "retry_after": 0.25,
    }
