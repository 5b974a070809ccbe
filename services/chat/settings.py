"""chat settings: its own database and inbox on top of the shared base."""

from switchboard.settings_base import *  # noqa: F403
from switchboard.settings_base import INSTALLED_APPS, database_for

SERVICE = "chat"
INSTALLED_APPS = INSTALLED_APPS + ["chat"]
ROOT_URLCONF = "chat.urls"
DATABASES = database_for("chat")
INBOX_NAME = "chat"
INBOX_CONSUMER = "chat.inbox.ChatInbox"
