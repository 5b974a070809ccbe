"""The mapping of shop users (the shop's user id, a token's `sub`) to local users.

A subject seen for the first time, in a valid shop token or in a service's
resolve_subject call (a shop may notify a user before their first connect), gets a
local User with an unusable password (it never logs in with one) and a ShopUser row;
from then on every service knows it by that User's id.

The username follows the latest token's `name`. A name that another user already has
(the demo alice, a local admin, another shop user) becomes `name#sub`, so a shop user can
never pass for someone else; a subject first seen without a name is named after its sub
until a token names it. `staff` follows the latest token too; a service's call never
changes it.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from switchboard import tokens
from ws_gateway.models import ShopUser

MAX_SUB = 255
MAX_USERNAME = 150  # Django's User.username


def _candidates(name: str, sub: str):
    name = " ".join(name.split())[:MAX_USERNAME] or sub[:MAX_USERNAME]
    yield name
    suffix = f"#{sub}"
    base = name[: max(1, MAX_USERNAME - len(suffix))]
    yield (base + suffix)[:MAX_USERNAME]
    for n in range(2, 100):
        tail = f"#{sub}#{n}"
        yield (name[: max(1, MAX_USERNAME - len(tail))] + tail)[-MAX_USERNAME:]


def _free_username(name: str, sub: str, current=None) -> str:
    User = get_user_model()
    for candidate in _candidates(name, sub):
        holder = User.objects.filter(username=candidate).first()
        if holder is None or (current is not None and holder.pk == current.pk):
            return candidate
    raise IntegrityError(f"no free username for subject {sub[:40]!r}")


def identity_of(claims, token: str) -> tokens.Identity | None:
    """tokens.verify's resolver in ws-gateway (settings.SHOP_SUBJECT_RESOLVER): the local
    identity of a verified shop token (`claims`: shoptokens.ShopClaims), renamed and
    restaffed as the token says."""
    try:
        return resolve(claims.sub, claims.name, claims.staff)
    except ValueError:  # a sub shoptokens let through but the table cannot hold
        return None


def resolve(sub: str, name: str | None = None, staff: bool | None = None, rename: bool = True) -> tokens.Identity:
    """The local identity of shop subject `sub`, made on first sight. `name`/`staff` from a
    token rename and restaff it; None leaves what is stored. A service's lookup passes
    rename=False: its `name` only names a subject never seen."""
    if not sub or len(sub) > MAX_SUB:
        raise ValueError("sub must be 1..255 characters")
    for _ in range(5):  # two first connects of one subject at once: the loser reads the winner's
        try:
            with transaction.atomic():
                return _resolve(sub, name, staff, rename)
        except IntegrityError:
            continue
    with transaction.atomic():
        return _resolve(sub, name, staff, rename)


def _resolve(sub: str, name: str | None, staff: bool | None, rename: bool) -> tokens.Identity:
    User = get_user_model()
    row = ShopUser.objects.select_related("user").filter(sub=sub).first()
    if row is None:
        user = User(username=_free_username(name or "", sub), is_staff=bool(staff))
        user.set_unusable_password()
        user.save()
        ShopUser.objects.create(sub=sub, user=user)
        return tokens.Identity(user.pk, user.username, user.is_staff)
    user = row.user
    changed = []
    if name is not None and rename:
        wanted = _free_username(name, sub, current=user)
        if wanted != user.username:
            user.username = wanted
            changed.append("username")
    if staff is not None and bool(staff) != user.is_staff:
        user.is_staff = bool(staff)
        changed.append("is_staff")
    if changed:
        user.save(update_fields=changed)
        row.save(update_fields=["updated_at"])
    return tokens.Identity(user.pk, user.username, user.is_staff)
