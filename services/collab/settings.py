"""collab settings: its own database and inbox on top of the shared base."""

from switchboard.settings_base import *  # noqa: F403
from switchboard.settings_base import INSTALLED_APPS, database_for

SERVICE = "collab"
INSTALLED_APPS = INSTALLED_APPS + ["collab"]
ROOT_URLCONF = "collab.urls"
DATABASES = database_for("collab")
INBOX_NAME = "collab"
INBOX_CONSUMER = "collab.inbox.CollabInbox"
