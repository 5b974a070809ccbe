"""A room's members as its shard's worker counts them, and coalesced notices (pure logic)."""

import json

from chat.online import Notices, RoomMembers, notice, window


def test_tabs_of_one_user_count_once_and_only_the_last_leaves():
    room = RoomMembers()
    assert room.add("c1", 1, "alice") is True
    assert room.add("c2", 1, "alice") is False  # a second tab: no join
    assert room.add("c3", 2, "bob") is True
    assert room.names == ["alice", "bob"]
    assert room.remove("c1") is None  # alice still has c2
    assert room.names == ["alice", "bob"]
    assert room.remove("c2") == (1, "alice")
    assert room.names == ["bob"]
    assert room.remove("c2") is None  # twice: nothing


def test_the_online_frame_follows_the_list_and_is_encoded_once_per_change():
    room = RoomMembers()
    room.add("c1", 2, "bob")
    first = room.online_frame()
    assert json.loads(first) == {"type": "online_users", "users": ["bob"]}
    room.add("c2", 2, "bob")  # same user: same list, same text object
    assert room.online_frame() is first
    room.add("c3", 1, "alice")
    assert json.loads(room.online_frame())["users"] == ["alice", "bob"]


def test_stale_judges_only_connections_added_before_the_read():
    room = RoomMembers()
    room.add("old", 1, "alice")
    import time

    cut = time.monotonic()
    room.add("new", 2, "bob")
    assert room.stale(alive=set(), before=cut) == ["old"]


def test_a_join_and_leave_within_one_window_cancel_out():
    n = Notices()
    n.joined("alice")
    n.left("alice")
    assert not n
    n.left("bob")
    n.joined("bob")  # left and came back: nobody needs to hear of either
    assert not n


def test_one_join_is_the_seeds_frame_several_are_one_frame_that_reads_right():
    assert json.loads(notice("user_join", ["bob"], "t")) == {"type": "user_join", "user": "bob", "timestamp": "t"}
    many = json.loads(notice("user_join", ["ann", "bob", "cat", "dan", "eve"], "t"))
    assert many["user"] == "ann, bob, cat and 2 others"
    assert many["users"] == ["ann", "bob", "cat", "dan", "eve"] and many["count"] == 5
    assert json.loads(notice("user_leave", ["ann", "bob", "cat", "dan"], "t"))["user"] == "ann, bob, cat and 1 other"
    assert json.loads(notice("user_leave", ["ann", "bob"], "t"))["user"] == "ann, bob"


def test_the_window_grows_with_what_a_flush_costs_a_big_room():
    assert window(0.2, 1_000, 10, 50_000_000) == 0.2
    # 55 KB of names to 5,000 sockets at 50 MB/s: 5.5 s
    assert round(window(0.2, 55_000, 5_000, 50_000_000), 2) == 5.5
    assert window(0.2, 55_000, 5_000, 0) == 0.2  # no budget: no limit


def test_a_few_joins_in_one_window_are_the_seeds_frames_more_are_one():
    few = Notices()
    for name in ("ann", "bob"):
        few.joined(name)
    assert [json.loads(t)["user"] for t in few.frames("t")] == ["ann", "bob"]
    crowd = Notices()
    for name in ("ann", "bob", "cat", "dan"):
        crowd.joined(name)
    crowd.left("eve")
    frames = [json.loads(t) for t in crowd.frames("t")]
    assert [(f["type"], f.get("count")) for f in frames] == [("user_join", 4), ("user_leave", None)]
