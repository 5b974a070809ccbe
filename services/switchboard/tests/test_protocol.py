"""The protocol is declared once: every frame a service or the gateway sends and every
command an inbox takes is in switchboard/protocol.py with its fields, every declared one
is used, and the pages document them."""

import re

import orjson
import pytest

from switchboard import protocol
from switchboard.config import ROOT

SOURCES = [p for p in (ROOT / "services").rglob("*.py") if "tests" not in p.parts and p.name != "protocol.py"]
# frame("kind", ...), and the dashboard's frame around pre-encoded stats
SENT_FRAME = re.compile(r"""\b(?:frame|stats_frame|raw_frame)\(\s*["']([a-z_]+)["']""")
# {"type": "gw.send", ...} and the like, built anywhere outside protocol.py
# and the gateway's to_service("gw.connect")
SENT_COMMAND = re.compile(r"""(?:["']type["']\s*:\s*|to_service\(\s*)["']((?:gw|notify|chat)\.[a-z_]+)["']""")


def sent(pattern):
    found = {}
    for path in SOURCES:
        for kind in pattern.findall(path.read_text()):
            found.setdefault(kind, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_server_frame_a_service_or_the_gateway_sends_is_declared():
    frames = sent(SENT_FRAME)
    assert "chat_message" in frames and "task_update" in frames  # the scan finds send sites
    undeclared = {kind: where for kind, where in frames.items() if kind not in protocol.SERVER_FRAME_TYPES}
    assert not undeclared, undeclared


def test_every_declared_server_frame_is_sent_somewhere():
    frames = set(sent(SENT_FRAME)) | {"error"}  # error_frame() builds "error"
    assert set(protocol.SERVER_FRAME_TYPES) - frames == set()


def test_every_command_on_the_channel_layer_is_declared_and_used():
    commands = sent(SENT_COMMAND)
    declared = set(protocol.GW_TO_SERVICE) | set(protocol.GW_TO_CONNECTION) | set(protocol.INBOX_COMMANDS)
    assert set(commands) == declared, {"undeclared": set(commands) - declared, "never sent": declared - set(commands)}


def test_the_gateway_handles_exactly_the_commands_services_send_it():
    from ws_gateway.consumer import GatewayConsumer

    handled = {name.replace("_", ".", 1) for name in dir(GatewayConsumer) if name.startswith("gw_")}
    assert handled == set(protocol.GW_TO_CONNECTION)


def test_frame_refuses_an_undeclared_type_or_field():
    assert orjson.loads(protocol.frame("user_typing", user="alice")) == {"type": "user_typing", "user": "alice"}
    with pytest.raises(ValueError, match="not a declared server frame"):
        protocol.frame("user_typed", user="alice")
    with pytest.raises(ValueError, match="usr"):
        protocol.frame("user_typing", usr="alice")
    with pytest.raises(ValueError, match="user"):
        protocol.frame("user_typing")
    # optional fields may be left out
    protocol.frame("ack", seq=3, applied=True, edits=[])


def test_raw_frame_wraps_json_encoded_once():
    text = protocol.raw_frame("stats_update", "data", b'{"online_users": 2}')
    assert orjson.loads(text) == {"type": "stats_update", "data": {"online_users": 2}}
    with pytest.raises(ValueError):
        protocol.raw_frame("unread_count", "data", b"{}")


def test_every_route_of_the_route_table_has_its_frames_and_the_page_documents_them():
    from switchboard import routes

    names = {r.name for r in routes.load().websocket}
    assert set(protocol.SERVER_FRAMES) - {"*"} == names
    assert set(protocol.CLIENT_FRAMES) == names
    page = (ROOT / "docs" / "protocol.md").read_text()
    for kind in [*protocol.SERVER_FRAME_TYPES, *protocol.INBOX_COMMANDS]:
        assert f"`{kind}" in page or f'"{kind}"' in page, f"docs/protocol.md does not mention {kind}"
