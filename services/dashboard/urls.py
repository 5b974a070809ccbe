"""dashboard's HTTP routes (behind nginx's /api/orders/ and /api/dashboard/)."""

from django.urls import path

from dashboard import views

urlpatterns = [
    path("api/orders/", views.orders),
    path("api/dashboard/alerts/", views.alerts),
]
