"""dashboard's HTTP routes (behind nginx's /api/orders/ and /api/dashboard/)."""

from django.urls import path

from dashboard import views
from switchboard.openapi import openapi_view

handler400 = "switchboard.http.bad_request"
handler404 = "switchboard.http.not_found"
handler500 = "switchboard.http.server_error"

urlpatterns = [
    path(
        "api/dashboard/openapi.json",
        openapi_view("Switchboard dashboard", "Orders and alerts, behind nginx's /api/orders/ and /api/dashboard/."),
    ),
    path("api/orders/", views.orders),
    path("api/dashboard/alerts/", views.alerts),
    path("api/dashboard/events/", views.events),
]
