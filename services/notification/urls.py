"""Notification's HTTP routes (behind nginx's /api/notifications/)."""

from django.urls import path

from notification import views

urlpatterns = [
    path("api/notifications/", views.notifications),
    path("api/notifications/read-all/", views.read_all),
    path("api/notifications/<int:notification_id>/read/", views.read_one),
]
