"""The report worker's HTTP routes (behind nginx's /api/reports/)."""

from django.urls import path

from report_worker import views
from switchboard.openapi import openapi_view

handler400 = "switchboard.http.bad_request"
handler404 = "switchboard.http.not_found"
handler500 = "switchboard.http.server_error"

urlpatterns = [
    path(
        "api/reports/openapi.json",
        openapi_view("Switchboard reports", "The report worker, behind nginx's /api/reports/."),
    ),
    path("api/reports/", views.reports),
    path("api/reports/stats/", views.stats),
    path("api/reports/task-updates/", views.task_updates),
    path("api/reports/<str:task_id>/", views.report),
    path("api/reports/<str:task_id>/download/", views.download),
]
