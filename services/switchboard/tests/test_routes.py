"""The route table: matching, groups and stable sharding."""

import pytest

from switchboard import routes
from switchboard.routes import ParamError, WebSocketRoute, load, shard_channel


def test_chat_route_matches_and_names_its_group_and_shard():
    match = load().match_websocket("/ws/chat/lobby/")
    assert match.route.service == "chat"
    assert match.params == {"room": "lobby"}
    assert match.group(1) == "chat.room.lobby"
    assert match.inbox_channel(1) == shard_channel("chat", "lobby")


def test_paths_outside_the_table_or_with_bad_params_do_not_match():
    table = load()
    for path in ("/ws/chat/", "/ws/chat/a/b/", "/ws/chat/has space/", "/ws/nope/", "/ws/chat/" + "x" * 65 + "/"):
        assert table.match_websocket(path) is None


def test_one_key_always_maps_to_one_shard_and_keys_spread():
    assert len({shard_channel("chat", "lobby", 8) for _ in range(5)}) == 1
    assert len({shard_channel("chat", f"room{i}", 8) for i in range(200)}) == 8


def test_every_websocket_route_is_under_an_http_prefix_routed_to_the_gateway():
    table = load()
    ws_prefixes = [r.prefix for r in table.http if r.websocket]
    assert all(any(r.path.startswith(p) for p in ws_prefixes) for r in table.websocket)


# ------------------------------------------------ typed parameters (issue 16) ----


def test_typed_path_parameters_are_canonical_ascii_and_typed():
    table = load()
    assert table.match_websocket("/ws/collab/7/").params == {"doc": 7}
    for path in ("/ws/collab/007/", "/ws/collab/\u00b2/", "/ws/collab/1\u0663/", "/ws/collab/-1/", "/ws/chat/lobby/\n"):
        assert table.match_websocket(path) is None, path


@pytest.mark.parametrize(
    "pairs",
    [
        [("room", "other")],  # a query naming the path's parameter
        [("since", "\u00b2")],  # a Unicode digit: str.isdigit() says yes
        [("since", "\uff11")],
        [("since", "-1")],
        [("since", "")],
        [("since", "1"), ("since", "2")],
        [("x", str(i)) for i in range(11)],
    ],
)
def test_a_query_the_route_does_not_take_as_given_is_refused(pairs):
    chat = load().match_websocket("/ws/chat/lobby/").route
    with pytest.raises(ParamError):
        chat.parse_query(pairs)


def test_query_parameters_are_typed_and_undeclared_ones_dropped():
    chat = load().match_websocket("/ws/chat/lobby/").route
    assert chat.parse_query([("since", "12"), ("cachebust", "x")]) == {"since": 12}
    collab = load().match_websocket("/ws/collab/3/").route
    assert collab.parse_query([("protocol", "json")]) == {"protocol": "json"}
    with pytest.raises(ParamError):
        collab.parse_query([("doc", "4")])
    with pytest.raises(ParamError):
        collab.parse_query([("protocol", "JSON")])


def test_a_route_that_lets_the_query_name_a_path_parameter_does_not_load():
    with pytest.raises(ValueError):
        WebSocketRoute(name="x", path="/ws/x/{doc}/", service="x", query={"doc": "uint"})
    with pytest.raises(ValueError):
        WebSocketRoute(name="x", path="/ws/x/{doc}/", service="x", params={"doc": "float"})


def test_every_inbox_command_runs_in_the_lane_of_its_key():
    # A command without a key would run in the shared lane, beside (not in order with)
    # the gw.* commands of the room or user it is about: a system message could then be
    # stored between two messages its sender saw in the other order.
    from switchboard import protocol

    assert set(protocol.INBOX_COMMANDS) <= set(routes.COMMAND_KEYS)
    in_room = {"type": "gw.receive", "route": "chat", "params": {"room": "lobby"}, "user": {"id": 1}}
    system = {"type": "chat.system", "room": "lobby", "message": "m", "user": "Shop", "client_id": "c", "reply_to": "r"}
    assert routes.command_key(system) == routes.command_key(in_room) == "lobby"
