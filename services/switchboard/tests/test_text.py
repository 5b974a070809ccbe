"""Stored text: control characters are found wherever they hide; links are http(s) or a path."""

import pytest
from pydantic import TypeAdapter, ValidationError

from switchboard.protocol import FrameError, parse_client_frame
from switchboard.text import Link, control_character


@pytest.mark.parametrize("bad", ["\x00", "a\x07b", "\x1b[2J", "\x7f", "\x85", "\x9f", "\x0b", "\x0c"])
def test_control_characters_are_found_in_values_keys_and_lists(bad):
    assert "U+" in control_character(bad)
    assert control_character({"items": [{"name": "ok"}, {"name": bad}]}).startswith("body.items.1.name")
    assert control_character({bad: 1}).startswith("body key")


def test_text_with_tabs_newlines_and_unicode_is_fine():
    assert (
        control_character({"m": "two\nlines\r\n\tindented", "n": "ünïcode ✓ 中文", "x": [1, 2.5, None, True]}) is None
    )


def test_a_websocket_frame_with_a_control_character_is_refused():
    with pytest.raises(FrameError) as err:
        parse_client_frame("chat", '{"type": "chat_message", "message": "a\\u0000b", "client_id": "c"}')
    assert "control character" in err.value.message
    assert parse_client_frame("chat", '{"type": "chat_message", "message": "a\\nb", "client_id": "c"}')


LINK = TypeAdapter(Link)


@pytest.mark.parametrize(
    "good", ["", "/", "/reports/", "/api/reports/x/download/?a=1#f", "https://a.example/x", "HTTP://a.example"]
)
def test_links_that_can_be_followed(good):
    assert LINK.validate_python(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,x",
        "vbscript:x",
        "//evil.example",
        "/\\evil.example",
        "https:///x",
        "https://",
        "ftp://a.example/",
        "reports/",
        "/a b",
    ],
)
def test_links_that_are_refused(bad):
    with pytest.raises(ValidationError):
        LINK.validate_python(bad)
