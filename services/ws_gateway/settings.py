"""ws-gateway settings: users, sessions and the web UI on top of the shared base."""

from csp.constants import NONE, SELF

from switchboard.config import env_list
from switchboard.settings_base import *  # noqa: F403
from switchboard.settings_base import INSTALLED_APPS, MIDDLEWARE, database_for

SERVICE = "ws-gateway"
INSTALLED_APPS = INSTALLED_APPS + ["django.contrib.sessions", "ws_gateway"]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    *MIDDLEWARE,
    "django.middleware.csrf.CsrfViewMiddleware",
    # Lazy request.user, on the event loop (switchboard/middleware.py).
    "switchboard.middleware.AuthenticationMiddleware",
    # Content-Security-Policy on every response (the pages are what it protects), with the
    # page's ws(s):// origin added to connect-src (ws_gateway/csp.py).
    "ws_gateway.csp.PageCSPMiddleware",
]
# No inline script anywhere (every page's JS is a static file under static/ws_gateway/,
# data reaches it through data- attributes), so an injected <script> or on*= attribute
# does not run. style-src is 'self' too, except on the collab editor (pages.collab_editor).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "connect-src": [SELF],
        "img-src": [SELF, "data:"],
        "style-src": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
    },
}
ROOT_URLCONF = "ws_gateway.urls"
# ws-gateway owns users: a shop token's subject is mapped here, in its own database
# (every other service asks it; switchboard/tokens.py).
SHOP_SUBJECT_RESOLVER = "ws_gateway.shopusers.identity_of"
DATABASES = database_for("ws_gateway")
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
LOGIN_URL = "/login/"
CSRF_TRUSTED_ORIGINS = env_list("ALLOWED_ORIGINS")

# Group messages decoded once per process, not once per member (ws_gateway/layers.py).
CHANNEL_LAYERS = {  # noqa: F405
    **CHANNEL_LAYERS,  # noqa: F405
    "default": {**CHANNEL_LAYERS["default"], "BACKEND": "ws_gateway.layers.GatewayPubSubChannelLayer"},  # noqa: F405
}
