"""The notification service's HTTP routes (behind nginx's /api/notifications/)."""

from django.urls import path

from notification import views
from switchboard.openapi import openapi_view

handler400 = "switchboard.http.bad_request"
handler404 = "switchboard.http.not_found"
handler500 = "switchboard.http.server_error"

urlpatterns = [
    path(
        "api/notifications/openapi.json",
        openapi_view("Switchboard notifications", "The notification service, behind nginx's /api/notifications/."),
    ),
    path("api/notifications/", views.notifications),
    path("api/notifications/read-all/", views.read_all),
    path("api/notifications/send/", views.send),
    path("api/notifications/<int:notification_id>/read/", views.read_one),
]
