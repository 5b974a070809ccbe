"""collab's HTTP routes (behind nginx's /api/collab/)."""

from django.urls import path

from collab import views
from switchboard.openapi import openapi_view

handler400 = "switchboard.http.bad_request"
handler404 = "switchboard.http.not_found"
handler500 = "switchboard.http.server_error"

urlpatterns = [
    path(
        "api/collab/openapi.json", openapi_view("Switchboard collab", "collab's REST API, behind nginx's /api/collab/.")
    ),
    path("api/collab/documents/", views.documents),
    path("api/collab/documents/<int:doc_id>/", views.document),
    path("api/collab/documents/<int:doc_id>/share/", views.share),
]
