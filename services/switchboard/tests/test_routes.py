"""The route table: matching, groups and stable sharding."""

from switchboard.routes import load, shard_channel


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
