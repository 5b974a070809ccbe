"""The report worker's HTTP routes (behind nginx's /api/reports/)."""

from django.urls import path

from report_worker import views

urlpatterns = [
    path("api/reports/", views.reports),
    path("api/reports/stats/", views.stats),
    path("api/reports/<uuid:task_id>/", views.status),
    path("api/reports/<uuid:task_id>/download/", views.download),
]
