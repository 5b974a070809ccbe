"""The auth API: tokens for good credentials only, and the staff check nginx uses."""

import pytest
from django.contrib.auth import get_user_model

from switchboard import tokens

pytestmark = pytest.mark.django_db


@pytest.fixture
def users():
    User = get_user_model()
    User.objects.create_user("alice", password="pw")
    User.objects.create_user("admin", password="pw", is_staff=True)


def test_token_for_good_credentials(client, users):
    res = client.post("/api/auth/token/", {"username": "alice", "password": "pw"}, content_type="application/json")
    assert res.status_code == 200
    body = res.json()
    assert tokens.verify(body["access"]).username == "alice"
    assert body["expires_in"] > 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"username": "alice", "password": "nope"}, 401),
        ({"username": "ghost", "password": "pw"}, 401),
        ({"username": "alice"}, 400),
        ("not json", 400),
    ],
)
def test_token_refused(client, users, body, status):
    res = client.post("/api/auth/token/", body, content_type="application/json")
    assert res.status_code == status
    assert "access" not in res.json()


def test_token_endpoint_is_post_only(client):
    assert client.get("/api/auth/token/").status_code == 405


def test_check_staff_for_anonymous_user_and_staff(client, users):
    assert client.get("/api/auth/check-staff/").status_code == 401
    client.login(username="alice", password="pw")
    assert client.get("/api/auth/check-staff/").status_code == 403
    client.login(username="admin", password="pw")
    assert client.get("/api/auth/check-staff/").status_code == 200


def test_session_token_needs_a_session(client, users):
    assert client.get("/api/auth/session-token/").status_code == 401
    client.login(username="alice", password="pw")
    assert tokens.verify(client.get("/api/auth/session-token/").json()["access"]).username == "alice"


def test_login_page_logs_in_and_redirects(client, users):
    assert client.get("/").status_code == 302
    res = client.post("/login/", {"username": "alice", "password": "pw", "next": "/"})
    assert res.status_code == 302 and res.url == "/"
    assert client.get("/").status_code == 200
    bad = client.post("/login/", {"username": "alice", "password": "x"})
    assert b"Wrong username or password" in bad.content


def test_subjects_maps_a_shop_user_for_service_tokens_only(client, users):
    def post(token, body):
        return client.post(
            "/api/auth/subjects/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
        )

    service = tokens.service_token("notification")
    admin = tokens.issue(tokens.Identity(2, "admin", True))
    assert post(admin, {"sub": "s-1"}).status_code == 403
    assert client.post("/api/auth/subjects/", {"sub": "s-1"}, content_type="application/json").status_code == 401
    first = post(service, {"sub": "s-1", "name": "alice"}).json()
    # The demo alice keeps her name; the shop's alice is told apart by her sub.
    assert first["username"] == "alice#s-1" and not first["is_staff"]
    again = post(service, {"sub": "s-1", "name": "other"}).json()
    assert again == first
    assert post(service, {"sub": "s-2"}).json()["username"] == "s-2"
    assert post(service, {"sub": ""}).status_code == 400
