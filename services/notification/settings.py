"""notification settings: its own database and inbox on top of the shared base."""

from switchboard.settings_base import *  # noqa: F403
from switchboard.settings_base import INSTALLED_APPS, database_for

SERVICE = "notification"
INSTALLED_APPS = INSTALLED_APPS + ["notification"]
ROOT_URLCONF = "notification.urls"
DATABASES = database_for("notification")
INBOX_NAME = "notification"
INBOX_CONSUMER = "notification.inbox.NotificationInbox"
