"""Chat's HTTP routes (behind nginx's /api/chat/)."""

from django.urls import path

from chat import views
from switchboard.openapi import openapi_view

handler400 = "switchboard.http.bad_request"
handler404 = "switchboard.http.not_found"
handler500 = "switchboard.http.server_error"

urlpatterns = [
    path("api/chat/openapi.json", openapi_view("Switchboard chat", "Chat's REST API, behind nginx's /api/chat/.")),
    path("api/chat/rooms/", views.rooms),
    path("api/chat/rooms/<slug:slug>/messages/", views.messages),
    path("api/chat/rooms/<slug:slug>/system-messages/", views.system_messages),
]
