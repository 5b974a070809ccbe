"""collab's HTTP routes (behind nginx's /api/collab/)."""

from django.urls import path

from collab import views

urlpatterns = [
    path("api/collab/documents/", views.documents),
    path("api/collab/documents/<int:doc_id>/", views.document),
    path("api/collab/documents/<int:doc_id>/share/", views.share),
]
