"""The example shop's URLs: log in and out, the page, the order and report forms, the token."""

from django.contrib.auth import views as auth_views
from django.urls import path
from switchboard_client.django import token_view

from orders import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="orders/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("orders/", views.create_order, name="create_order"),
    path("reports/", views.start_report, name="start_report"),
    # GET: the logged-in user's connection token (text/plain, never cached; 401 when logged out).
    path("switchboard/token/", token_view, name="switchboard_token"),
]
