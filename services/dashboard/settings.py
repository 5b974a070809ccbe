"""dashboard settings: its own database and inbox on top of the shared base."""

from switchboard.settings_base import *  # noqa: F403
from switchboard.settings_base import INSTALLED_APPS, database_for

SERVICE = "dashboard"
INSTALLED_APPS = INSTALLED_APPS + ["dashboard"]
ROOT_URLCONF = "dashboard.urls"
DATABASES = database_for("dashboard")
INBOX_NAME = "dashboard"
INBOX_CONSUMER = "dashboard.inbox.DashboardInbox"
