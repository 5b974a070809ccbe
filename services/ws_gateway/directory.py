"""ws-gateway's side of the user directory (switchboard/userdir.py): it owns the users,
so it keeps the directory right.

* Every User save that can change a name or the staff flag, and every delete, marks the
  names it touches before the database write and settles them after the commit
  (`transaction.on_commit`), from the model's signals, so every path that saves a User
  (shop tokens renaming their user, the admin, createsuperuser, seed_demo) keeps it.
* `/api/auth/users/` (asked only when the directory did not settle a name) settles a mark
  older than the bound with its database answer, and starts a fill in the background
  when this Redis's directory was never filled (a new or restarted Redis).
"""

from __future__ import annotations

import logging
import threading

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save

from switchboard import userdir

log = logging.getLogger(__name__)

# A save naming update_fields without these cannot move a name (a login's last_login).
FIELDS = frozenset({"username", "is_staff"})
_ATTR = "_userdir_names"
_filling = threading.Lock()


def _before_save(sender, instance, update_fields=None, using=None, **kwargs) -> None:
    if update_fields is not None and not FIELDS & set(update_fields):
        instance.__dict__[_ATTR] = None
        return
    names = {instance.username}
    if instance.pk is not None:
        old = sender._default_manager.using(using).filter(pk=instance.pk).values_list("username", flat=True).first()
        if old is not None:
            names.add(old)
    userdir.mark(names)  # raises userdir.Unavailable: the save does not happen
    instance.__dict__[_ATTR] = names


def _after_save(sender, instance, using=None, **kwargs) -> None:
    names = instance.__dict__.pop(_ATTR, None)
    if not names:
        return
    final = dict.fromkeys(names, userdir.FREE)
    final[instance.username] = userdir.value_of(instance.pk, instance.is_staff)
    transaction.on_commit(lambda: userdir.settle(final), using=using)


def _before_delete(sender, instance, **kwargs) -> None:
    userdir.mark([instance.username])


def _after_delete(sender, instance, using=None, **kwargs) -> None:
    name = instance.username
    transaction.on_commit(lambda: userdir.settle({name: userdir.FREE}), using=using)


def connect() -> None:
    """Hook the directory's steps to the user model's signals (ws-gateway's AppConfig)."""
    User = get_user_model()
    uid = "switchboard.userdir"
    pre_save.connect(_before_save, sender=User, dispatch_uid=uid)
    post_save.connect(_after_save, sender=User, dispatch_uid=uid)
    pre_delete.connect(_before_delete, sender=User, dispatch_uid=uid)
    post_delete.connect(_after_delete, sender=User, dispatch_uid=uid)


def snapshot():
    """Every user as (username, directory value), read from the database as it is now."""
    rows = get_user_model().objects.order_by("pk").values_list("username", "pk", "is_staff")
    for name, pk, staff in rows.iterator(chunk_size=2000):
        yield name, userdir.value_of(pk, staff)


def answered(username: str, user) -> None:
    """`/api/auth/users/` answered `username` from the database (`user`, or None)."""
    value = userdir.FREE if user is None else userdir.value_of(user.pk, user.is_staff)
    userdir.settle_stale(username, value)
    if userdir.needs_fill() and _filling.acquire(blocking=False):
        threading.Thread(target=_fill, name="userdir-fill", daemon=True).start()


def _fill() -> None:
    try:
        written = userdir.fill(snapshot)
        if written is not None:
            log.info("user directory filled: %d names", written)
    except Exception:
        log.warning("user directory: fill failed (the next lookup that misses retries)", exc_info=True)
    finally:
        # The thread's own database connection, not left open when the thread ends.
        connection.close()
        _filling.release()


def wait_for_fill(timeout: float = 10.0) -> bool:
    """Wait until no fill is running (False if one still is after `timeout`): for a
    caller that must not race the fill's reads, such as a test about to empty the
    database under it."""
    if not _filling.acquire(timeout=timeout):
        return False
    _filling.release()
    return True


def rebuild() -> int | None:
    """Drop the directory and fill it again (after writes that bypassed the signals)."""
    userdir.clear()
    return userdir.fill(snapshot)
