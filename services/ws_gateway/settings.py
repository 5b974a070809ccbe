"""ws-gateway settings: users, sessions and the web UI on top of the shared base."""

from switchboard.config import env_list
from switchboard.settings_base import *  # noqa: F403
from switchboard.settings_base import INSTALLED_APPS, MIDDLEWARE, database_for

SERVICE = "ws-gateway"
INSTALLED_APPS = INSTALLED_APPS + ["django.contrib.sessions", "ws_gateway"]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    *MIDDLEWARE,
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "ws_gateway.urls"
DATABASES = database_for("ws_gateway")
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
LOGIN_URL = "/login/"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_TRUSTED_ORIGINS = env_list("ALLOWED_ORIGINS")

# Group messages decoded once per process, not once per member (ws_gateway/layers.py).
CHANNEL_LAYERS = {  # noqa: F405
    **CHANNEL_LAYERS,  # noqa: F405
    "default": {**CHANNEL_LAYERS["default"], "BACKEND": "ws_gateway.layers.GatewayPubSubChannelLayer"},  # noqa: F405
}
