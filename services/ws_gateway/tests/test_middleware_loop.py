"""ws-gateway's user lookup (every staff notification asks it, issue 21) and its pages:
the non-blocking middleware hooks run on the event loop; sessions, the staff check and
every header behave as before. Behaviour only; costs are bench/notifypush.py's."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from csp.middleware import CSPMiddleware
from django.contrib.auth import get_user_model
from django.contrib.auth import middleware as auth

from switchboard import tokens

pytestmark = pytest.mark.django_db(transaction=True)


def on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def spied(monkeypatch):
    where: list[tuple[str, bool]] = []
    for cls, hooks in (
        (auth.AuthenticationMiddleware, ["process_request"]),
        (CSPMiddleware, ["process_request", "process_response"]),
    ):
        for hook in hooks:
            original = getattr(cls, hook)

            def spy(self, *args, _original=original, _name=f"{cls.__name__}.{hook}"):
                where.append((_name, on_loop()))
                return _original(self, *args)

            monkeypatch.setattr(cls, hook, spy)
    return where


async def test_the_user_lookup_runs_auth_and_csp_hooks_on_the_loop(async_client, spied):
    await sync_to_async(get_user_model().objects.create_user)("bob", password="pw")
    service = tokens.service_token("notification")
    res = await async_client.get(
        "/api/auth/users/", {"username": "bob"}, headers={"Authorization": f"Bearer {service}"}
    )
    assert res.status_code == 200 and res.json()["username"] == "bob"
    assert "connect-src" in res["Content-Security-Policy"] and res["X-Frame-Options"] == "DENY"
    assert sorted(name for name, _ in spied) == [
        "AuthenticationMiddleware.process_request",
        "CSPMiddleware.process_request",
        "CSPMiddleware.process_response",
    ]
    assert [name for name, loop in spied if not loop] == []


async def test_a_session_user_is_still_known_to_the_staff_check(async_client):
    await sync_to_async(get_user_model().objects.create_user)("admin2", password="pw", is_staff=True)
    assert (await async_client.get("/api/auth/check-staff/")).status_code == 401
    await async_client.alogin(username="admin2", password="pw")
    assert (await async_client.get("/api/auth/check-staff/")).status_code == 200
