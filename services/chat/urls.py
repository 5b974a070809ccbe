"""Chat's HTTP routes (behind nginx's /api/chat/)."""

from django.urls import path

from chat import views

urlpatterns = [
    path("api/chat/rooms/", views.rooms),
    path("api/chat/rooms/<slug:slug>/messages/", views.messages),
]
