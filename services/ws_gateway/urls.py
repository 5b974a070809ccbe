"""ws-gateway's HTTP routes: the auth API and the web UI pages."""

from pathlib import Path

from django.urls import path, re_path
from django.views.decorators.http import require_safe
from django.views.static import serve

from switchboard.openapi import openapi_view
from ws_gateway import api_auth, pages

STATIC_ROOT = Path(__file__).parent / "static"

urlpatterns = [
    path(
        "api/auth/openapi.json", openapi_view("Switchboard auth", "ws-gateway's auth API, behind nginx's /api/auth/.")
    ),
    path("api/auth/token/", api_auth.token),
    path("api/auth/session-token/", api_auth.session_token),
    path("api/auth/me/", api_auth.me),
    path("api/auth/check-staff/", api_auth.check_staff),
    path("api/auth/users/", api_auth.users),
    path("api/auth/stats/", api_auth.stats),
    path("api/auth/subjects/", api_auth.subjects),
    path("api/auth/api-keys/", api_auth.api_keys),
    path("api/auth/api-keys/<str:key_id>/revoke/", api_auth.revoke_api_key),
    path("login/", pages.login_view, name="login"),
    path("logout/", pages.logout_view),
    path("", pages.rooms, name="rooms"),
    path("chat/<slug:room>/", pages.chat),
    path("collab/", pages.collab_documents),
    path("collab/<int:doc>/", pages.collab_editor),
    path("dashboard/", pages.dashboard, name="dashboard"),
    path("reports/", pages.reports, name="reports"),
    re_path(r"^static/(?P<path>.*)$", require_safe(serve), {"document_root": STATIC_ROOT}),
]
