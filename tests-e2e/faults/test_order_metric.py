"""The campaign's order count (campaign.order_violations), on participants filled by
hand: it sees a room shown in two orders and a sender's messages stored out of the
order sent, and does not blame the server for a message the client sent again."""

from __future__ import annotations

from campaign import Participant, order_violations


def participant(user: str, acked: dict[str, int], seen: dict[int, str], resent=()) -> Participant:
    p = Participant(None, "room", user, "token")
    p.acked, p.seen, p.resent = dict(acked), dict(seen), set(resent)
    return p


def test_one_order_everywhere_is_no_violation():
    room = {1: "alice:1", 2: "bob:1", 3: "alice:2"}
    people = [participant("alice", {"alice:1": 1, "alice:2": 3}, room), participant("bob", {"bob:1": 2}, room)]
    assert order_violations(people) == 0


def test_two_participants_shown_different_texts_under_one_seq():
    alice = participant("alice", {"alice:1": 1}, {1: "alice:1", 2: "bob:1"})
    bob = participant("bob", {"bob:1": 3}, {1: "alice:1", 2: "bob:2", 3: "bob:1"})
    assert order_violations([alice, bob]) == 1


def test_a_sender_stored_out_of_the_order_it_sent_counts_unless_resent():
    stored = {1: "alice:2", 2: "alice:1", 3: "alice:3"}
    assert order_violations([participant("alice", {"alice:1": 2, "alice:2": 1, "alice:3": 3}, stored)]) == 1
    # alice:1 was unacknowledged in time and sent again after alice:2: stored after it.
    again = participant("alice", {"alice:1": 2, "alice:2": 1, "alice:3": 3}, stored, resent={"alice:1"})
    assert order_violations([again]) == 0
