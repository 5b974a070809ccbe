"""Chat's store: gapless per-room sequence, idempotent resends, exact replay after since."""

import pytest

from chat import store
from chat.models import ChatRoom
from switchboard.tokens import Identity

pytestmark = pytest.mark.django_db
ALICE, BOB = Identity(1, "alice"), Identity(2, "bob")


@pytest.fixture
def rooms():
    return ChatRoom.objects.create(name="A", slug="a"), ChatRoom.objects.create(name="B", slug="b")


def test_each_room_has_its_own_gapless_sequence(rooms):
    a, b = rooms
    seqs_a = [store.post_message(a.pk, ALICE, f"m{i}", None)[0].seq for i in range(3)]
    seqs_b = [store.post_message(b.pk, BOB, "x", None)[0].seq for _ in range(2)]
    assert seqs_a == [1, 2, 3] and seqs_b == [1, 2]


def test_same_client_id_is_stored_once_per_user(rooms):
    a, _ = rooms
    first, created = store.post_message(a.pk, ALICE, "hi", "c1")
    again, created_again = store.post_message(a.pk, ALICE, "hi", "c1")
    assert created and not created_again and again.pk == first.pk
    # Another user may use the same client id; the resend's seq was rolled back with it.
    other, created_other = store.post_message(a.pk, BOB, "hi", "c1")
    assert created_other and other.seq == first.seq + 1
    a.refresh_from_db()
    assert a.last_seq == other.seq


def test_a_message_to_a_room_that_is_gone_is_refused(rooms):
    with pytest.raises(ChatRoom.DoesNotExist):
        store.post_message(999_999, ALICE, "hi", None)


def test_history_since_is_exact_and_default_is_the_last_n(rooms):
    a, _ = rooms
    for i in range(10):
        store.post_message(a.pk, ALICE, f"m{i}", None)
    messages, last_seq, truncated = store.history(a, since=7, limit=50, since_max=100)
    assert [m["seq"] for m in messages] == [8, 9, 10] and last_seq == 10 and not truncated
    messages, _, _ = store.history(a, since=None, limit=4, since_max=100)
    assert [m["message"] for m in messages] == ["m6", "m7", "m8", "m9"]
    messages, _, truncated = store.history(a, since=0, limit=50, since_max=3)
    assert [m["seq"] for m in messages] == [8, 9, 10] and truncated


def test_pages_walk_backwards_and_forwards(rooms):
    a, _ = rooms
    for i in range(5):
        store.post_message(a.pk, ALICE, f"m{i}", None)
    items, more = store.page(a, before=None, after=None, limit=2)
    assert [m["seq"] for m in items] == [4, 5] and more
    items, more = store.page(a, before=4, after=None, limit=2)
    assert [m["seq"] for m in items] == [2, 3] and more
    items, more = store.page(a, before=None, after=3, limit=10)
    assert [m["seq"] for m in items] == [4, 5] and not more
