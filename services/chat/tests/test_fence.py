"""The fence at commit: a chat worker that lost a room's shard stores nothing.

The new owner's token is in the database before it takes a command
(ownership.raise_db_fence); post_message under an older token is refused in its own
transaction, so the message is neither stored nor given a seq."""

import pytest

from chat import store
from chat.models import ChatRoom, Message
from switchboard import ownership
from switchboard.tokens import Identity

pytestmark = pytest.mark.django_db(transaction=True)
ALICE = Identity(1, "alice", False)


def as_owner(token: int, shard: int = 0):
    return ownership.current.set(ownership.Claim("chat", shard, token, "cmd"))


def test_a_stale_owner_stores_nothing_and_the_new_one_stores_in_order():
    room = ChatRoom.objects.create(name="Lobby", slug="lobby")
    assert ownership.raise_db_fence("chat", 0, 1)
    reset = as_owner(1)
    store.post_message(room.pk, ALICE, "from the first owner", "c1")
    ownership.current.reset(reset)

    assert ownership.raise_db_fence("chat", 0, 2)  # the shard moved on
    reset = as_owner(1)
    with pytest.raises(ownership.ShardLost):
        store.post_message(room.pk, ALICE, "after a long pause", "c2")
    ownership.current.reset(reset)
    reset = as_owner(2)
    store.post_message(room.pk, ALICE, "from the new owner", "c3")
    ownership.current.reset(reset)

    assert list(Message.objects.order_by("seq").values_list("seq", "content")) == [
        (1, "from the first owner"),
        (2, "from the new owner"),
    ]


def test_the_fence_never_goes_back_and_other_shards_are_not_fenced():
    assert ownership.raise_db_fence("chat", 0, 5)
    assert not ownership.raise_db_fence("chat", 0, 4)
    assert ownership.raise_db_fence("chat", 1, 1)
    room = ChatRoom.objects.create(name="Lobby", slug="lobby")
    reset = as_owner(1, shard=1)
    store.post_message(room.pk, ALICE, "shard 1 is still mine", None)
    ownership.current.reset(reset)


def test_outside_an_inbox_worker_nothing_is_checked():
    room = ChatRoom.objects.create(name="Lobby", slug="lobby")
    message, created = store.post_message(room.pk, ALICE, "from a view or a script", None)
    assert created and message.seq == 1
