"""The cookies a login sets, as a browser sees them: Secure with SECURE_COOKIES=1 (behind
TLS), never without it (plain http would drop them); HttpOnly session, SameSite=Lax."""

import json
import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model

from switchboard.settings_base import cookie_settings

pytestmark = pytest.mark.django_db


def login_cookies(client) -> dict[str, str]:
    """Set-Cookie of the login page (csrftoken) and of a good login (sessionid)."""
    get_user_model().objects.create_user("alice", password="pw")
    page = client.get("/login/")
    res = client.post("/login/", {"username": "alice", "password": "pw", "next": "/"})
    assert res.status_code == 302
    return {
        "csrftoken": page.cookies["csrftoken"].output(header=""),
        "sessionid": res.cookies["sessionid"].output(header=""),
    }


def attributes(set_cookie: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in set_cookie.split(";")[1:]}


@pytest.mark.parametrize("secure", ["0", "1"])
def test_secure_cookies_marks_the_login_cookies_secure(client, settings, monkeypatch, secure):
    monkeypatch.setenv("SECURE_COOKIES", secure)
    for name, value in cookie_settings().items():
        setattr(settings, name, value)
    cookies = login_cookies(client)
    for header in cookies.values():
        assert ("secure" in attributes(header)) == (secure == "1"), header
        assert "SameSite=Lax" in header, header
    assert "httponly" in attributes(cookies["sessionid"])


def test_every_service_reads_secure_cookies_when_it_starts(tmp_path):
    """The settings module itself, imported as a process starts with SECURE_COOKIES=1."""
    env = {
        **os.environ,
        "SECURE_COOKIES": "1",
        "SWITCHBOARD_DEBUG": "1",
        "SWITCHBOARD_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "ws_gateway.settings",
    }
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps([settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, "
        "settings.SESSION_COOKIE_HTTPONLY, settings.SESSION_COOKIE_SAMESITE]))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [True, True, True, "Lax"]
