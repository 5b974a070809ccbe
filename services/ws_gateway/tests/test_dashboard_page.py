"""The dashboard page: staff see it, other users get 403, strangers log in first."""

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


def test_dashboard_page_is_for_staff_only(client):
    User = get_user_model()
    User.objects.create_user("admin", password="pw", is_staff=True)
    User.objects.create_user("alice", password="pw")
    assert client.get("/dashboard/").status_code == 302  # to the login page
    client.login(username="alice", password="pw")
    assert client.get("/dashboard/").status_code == 403
    assert b'href="/dashboard/"' not in client.get("/").content
    client.login(username="admin", password="pw")
    page = client.get("/dashboard/")
    assert page.status_code == 200 and b"/static/ws_gateway/dashboard.js" in page.content
    assert b'href="/dashboard/"' in client.get("/").content
