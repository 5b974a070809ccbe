"""The Django helpers in a minimal Django of the shop's (configured here): the view gives
the logged-in user a token Switchboard's verifier accepts, and anonymous users none."""

import time

import django
import pytest
from django.conf import settings

SECRET = "client-django-shop-secret-0123456789abcdefgh"

if not settings.configured:
    settings.configure(
        SECRET_KEY="the-shops-own-django-secret-key-0123456789",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        SWITCHBOARD_SHOP_KEY=f"shop-dj:{SECRET}",
        SWITCHBOARD_TOKEN_TTL=120,
    )
    django.setup()

from django.contrib.auth.models import AnonymousUser, User  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from switchboard import shoptokens  # noqa: E402
from switchboard_client.django import token_view, user_token  # noqa: E402


@pytest.fixture(autouse=True)
def switchboard_settings(monkeypatch):
    for name in ("SHOP_JWKS", "SHOP_JWT_AUDIENCE", "SHOP_JWT_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHOP_JWT_KEYS", f"shop-dj:{SECRET}")


def get(user):
    request = RequestFactory().get("/switchboard/token/")
    request.user = user
    return token_view(request)


def test_the_view_gives_the_logged_in_user_their_token():
    res = get(User(pk=31, username="carla", is_staff=True))
    assert res.status_code == 200 and res["Content-Type"].startswith("text/plain")
    assert "no-store" in res["Cache-Control"]
    got = shoptokens.verify(res.content.decode())
    assert (got.sub, got.name, got.staff) == ("31", "carla", True)
    assert got.exp - time.time() <= 120


def test_anonymous_and_inactive_users_get_no_token():
    assert get(AnonymousUser()).status_code == 401
    assert get(User(pk=32, username="gone", is_active=False)).status_code == 401


def test_the_view_is_get_only():
    request = RequestFactory().post("/switchboard/token/")
    request.user = User(pk=33, username="dan")
    assert token_view(request).status_code == 405


def test_user_token_with_the_audience_switchboard_asks_for(monkeypatch):
    monkeypatch.setenv("SHOP_JWT_AUDIENCE", "switchboard")
    user = User(pk=34, username="eve")
    assert shoptokens.verify(user_token(user)) is None
    monkeypatch.setattr(settings, "SWITCHBOARD_TOKEN_AUDIENCE", "switchboard", raising=False)
    assert shoptokens.verify(user_token(user)).sub == "34"
