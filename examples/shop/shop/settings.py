"""Settings of the example shop: a Django project of its own, with its own users and
database, that uses Switchboard only through its server API and connection tokens.

Everything Switchboard needs comes from the environment (docs/quickstart.md):

    SWITCHBOARD_URL       where Switchboard's gateway answers (http://127.0.0.1:8080 for `make run`)
    SWITCHBOARD_SHOP_KEY  kid:secret, one entry of Switchboard's SHOP_JWT_KEYS: signs the users' tokens
    SWITCHBOARD_API_KEY   sbk_..., a server API key (scopes notify, dashboard, chat, tasks)
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# The shop's own SECRET_KEY (sessions, CSRF): never Switchboard's, never the shop key.
SECRET_KEY = os.environ.get("SHOP_SECRET_KEY", "example-shop-only-not-for-production")
DEBUG = os.environ.get("SHOP_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "orders",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "shop.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
WSGI_APPLICATION = "shop.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SHOP_DB", str(BASE_DIR / "db.sqlite3")),
    }
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# Switchboard: where it is, the key the shop signs its users' tokens with, its API key.
SWITCHBOARD_URL = os.environ.get("SWITCHBOARD_URL", "http://127.0.0.1:8080").rstrip("/")
SWITCHBOARD_SHOP_KEY = os.environ.get("SWITCHBOARD_SHOP_KEY", "")
SWITCHBOARD_API_KEY = os.environ.get("SWITCHBOARD_API_KEY", "")
SWITCHBOARD_TOKEN_TTL = 300  # seconds: a socket closes at exp and the page asks for a fresh one
