"""The report worker's HTTP routes (behind nginx's /api/reports/)."""

from django.urls import path

from report_worker import views

urlpatterns = [
    path("api/reports/", views.reports),
    path("api/reports/stats/", views.stats),
    path("api/reports/<str:task_id>/", views.report),
    path("api/reports/<str:task_id>/download/", views.download),
]
