"""The fence at commit: a notification worker that lost a user's shard stores nothing.

notify.create is the one notification command whose redo is not harmless (marking read
twice is): if a frozen owner resumed and stored a notification after the new owner had
redone the command, the user would be shown it twice. Under an older token than the
database's fence, create() is refused in its own transaction."""

import pytest

from notification import store
from notification.models import Notification
from switchboard import ownership

pytestmark = pytest.mark.django_db(transaction=True)


def as_owner(token: int, shard: int = 0, command: str = "cmd"):
    return ownership.current.set(ownership.Claim("notification", shard, token, command))


def test_a_stale_owner_stores_no_notification_and_the_new_one_does():
    assert ownership.raise_db_fence("notification", 0, 1)
    reset = as_owner(1, command="c1")
    store.create(1, "first", "from the first owner")
    ownership.current.reset(reset)

    assert ownership.raise_db_fence("notification", 0, 2)  # the shard moved on
    reset = as_owner(1, command="c2")
    with pytest.raises(ownership.ShardLost):
        store.create(1, "again", "after a long pause")
    ownership.current.reset(reset)
    reset = as_owner(2, command="c2")
    store.create(1, "again", "from the new owner")
    ownership.current.reset(reset)

    assert list(Notification.objects.order_by("id").values_list("title", "message")) == [
        ("first", "from the first owner"),
        ("again", "from the new owner"),
    ]


def test_outside_an_inbox_worker_nothing_is_checked():
    assert store.create(1, "from a view", "no claim")["title"] == "from a view"


def test_a_new_owner_redoing_a_command_the_old_one_stored_stores_it_once():
    assert ownership.raise_db_fence("notification", 0, 1)
    reset = as_owner(1, command="c9")
    first = store.create(1, "once", "stored, then the owner froze before its next take")
    ownership.current.reset(reset)
    assert ownership.raise_db_fence("notification", 0, 2)
    reset = as_owner(2, command="c9")  # the in-flight command, put back and redone
    again = store.create(1, "once", "stored, then the owner froze before its next take")
    ownership.current.reset(reset)
    assert again["id"] == first["id"] and Notification.objects.count() == 1
