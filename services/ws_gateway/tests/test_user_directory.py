"""The user directory on Redis (switchboard/userdir.py, kept by ws_gateway/directory.py):
every service finds a user by name with one HGET, and the answer follows every rename,
freed name and delete exactly; what it cannot vouch for it sends to ws-gateway.

`directory_down` points the REST fallback at a port nothing listens on: a lookup that
works under it was answered by the directory alone.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import redis
from django.contrib.auth import get_user_model
from django.db import transaction

from switchboard import tokens, userdir, users
from ws_gateway import directory, shopusers

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()


def who(name: str) -> int | None:
    found = users.lookup_user(name, "notification")
    return None if found is None else found["id"]


def raw(redis_url: str, name: str) -> bytes | None:
    return redis.Redis.from_url(redis_url).hget(userdir.KEY, name)


def test_a_new_user_is_found_without_asking_ws_gateway(redis_url, directory_down):
    dora = User.objects.create(username="dora", is_staff=True)
    assert users.lookup_user("dora", "notification") == {"id": dora.pk, "username": "dora", "is_staff": True}


def test_a_rename_frees_the_old_name_and_a_new_holder_gets_it(redis_url, directory_down):
    a = User.objects.create(username="alice")
    a.username = "alice-old"
    a.save()
    assert who("alice") is None
    assert who("alice-old") == a.pk
    b = User.objects.create(username="alice")
    assert who("alice") == b.pk
    assert who("alice-old") == a.pk


def test_a_shop_user_renamed_by_its_token_is_found_by_the_new_name_only(redis_url, directory_down):
    first = shopusers.resolve("cust-1", "Old Name")
    assert who("Old Name") == first.id
    renamed = shopusers.resolve("cust-1", "New Name")
    assert renamed.id == first.id
    assert who("New Name") == first.id
    assert who("Old Name") is None
    # The freed name, taken by another shop user, is theirs.
    other = shopusers.resolve("cust-2", "Old Name")
    assert who("Old Name") == other.id != first.id


def test_names_swapped_in_one_transaction_end_as_the_database_has_them(redis_url, directory_down):
    a, b = User.objects.create(username="ann"), User.objects.create(username="ben")
    with transaction.atomic():
        a.username = "tmp"
        a.save()
        b.username = "ann"
        b.save()
        a.username = "ben"
        a.save()
    assert (who("ann"), who("ben"), who("tmp")) == (b.pk, a.pk, None)


def test_staff_flag_and_delete_follow(redis_url, directory_down):
    u = User.objects.create(username="carl")
    u.is_staff = True
    u.save(update_fields=["is_staff"])
    assert users.lookup_user("carl", "notification")["is_staff"] is True
    u.delete()
    assert who("carl") is None


def test_a_login_does_not_touch_the_directory(redis_url):
    u = User.objects.create(username="eve")
    before = raw(redis_url, "eve")
    redis.Redis.from_url(redis_url).hset(userdir.KEY, "eve", "sentinel")
    u.save(update_fields=["last_login"])
    assert raw(redis_url, "eve") == b"sentinel" != before


def test_a_rolled_back_rename_leaves_both_names_to_ws_gateway(redis_url, directory_down):
    u = User.objects.create(username="fay")
    with pytest.raises(RuntimeError), transaction.atomic():
        u.username = "fay2"
        u.save()
        raise RuntimeError("the write fails after the directory was marked")
    # Neither name is vouched for: both go to ws-gateway (down here: the lookup fails).
    assert userdir.lookup("fay") is None and userdir.lookup("fay2") is None
    with pytest.raises(httpx.HTTPError):
        users.lookup_user("fay", "notification")


def test_ws_gateway_settles_a_mark_left_by_a_rolled_back_write(redis_url, client):
    u = User.objects.create(username="gus")
    r = redis.Redis.from_url(redis_url)
    r.hset(userdir.KEY, "gus", userdir.MARK + "1")  # a mark from long ago (Redis time 1)
    r.hset(userdir.KEY, "gus2", userdir.MARK + str(int(r.time()[0])))  # one just made
    staff = tokens.issue(tokens.Identity(999, "ops", True))
    for name in ("gus", "gus2"):
        res = client.get("/api/auth/users/", {"username": name}, headers={"Authorization": f"Bearer {staff}"})
        assert res.status_code == (200 if name == "gus" else 404)
    assert userdir.lookup("gus") == userdir.Entry(u.pk, False)
    assert userdir.lookup("gus2") is None  # a write may still be open: left to ws-gateway


def test_a_user_write_is_refused_when_redis_does_not_take_the_mark(monkeypatch, redis_url):
    u = User.objects.create(username="hal")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    userdir.reset()
    u.username = "hal2"
    with pytest.raises(userdir.Unavailable):
        u.save()
    assert User.objects.get(pk=u.pk).username == "hal"


def test_after_redis_lost_the_directory_ws_gateway_fills_it_again(redis_url, client, directory_down):
    made = {name: User.objects.create(username=name).pk for name in (f"user{i}" for i in range(1200))}
    redis.Redis.from_url(redis_url).flushall()  # a Redis restarted without persistence
    assert userdir.lookup("user7") is None  # a miss: asked of ws-gateway
    staff = tokens.issue(tokens.Identity(999, "ops", True))
    assert (
        client.get("/api/auth/users/", {"username": "user7"}, headers={"Authorization": f"Bearer {staff}"}).json()["id"]
        == made["user7"]
    )
    deadline = time.time() + 30
    while userdir.needs_fill() and time.time() < deadline:
        time.sleep(0.05)
    assert {name: who(name) for name in made} == made


def test_a_fill_never_writes_its_snapshot_over_a_later_rename(redis_url, directory_down):
    u = User.objects.create(username="ida")
    redis.Redis.from_url(redis_url).flushall()
    stale = list(directory.snapshot())

    def snapshot():
        u.username = "ida2"
        u.save()  # renamed after the fill read its snapshot
        yield from stale

    assert userdir.fill(snapshot) == 0
    assert (who("ida"), who("ida2")) == (None, u.pk)


def test_a_fill_stops_when_redis_restarts_under_it(redis_url):
    for i in range(3):
        User.objects.create(username=f"jo{i}")
    r = redis.Redis.from_url(redis_url)
    r.flushall()
    rows = list(directory.snapshot())

    def snapshot():
        yield rows[0]
        r.flushall()  # the restart: the snapshot belongs to the Redis before it
        yield from rows[1:]

    assert userdir.fill(snapshot, batch=1) is None
    assert r.hlen(userdir.KEY) == 0 and userdir.needs_fill()


def test_one_fill_at_a_time(redis_url):
    User.objects.create(username="kim")
    redis.Redis.from_url(redis_url).flushall()
    inside, release = threading.Event(), threading.Event()
    results = []

    def slow():
        inside.set()
        release.wait(10)
        yield from directory.snapshot()

    t = threading.Thread(target=lambda: results.append(userdir.fill(slow)))
    t.start()
    assert inside.wait(10)
    assert userdir.fill(directory.snapshot) is None  # the lock is held
    release.set()
    t.join(10)
    assert results == [1] and not userdir.needs_fill()
