"""report-worker settings: its own database (report records) on top of the shared base.

The same settings serve its HTTP face (daphne), the Celery worker and Flower.
"""

from switchboard.settings_base import *  # noqa: F403
from switchboard.settings_base import INSTALLED_APPS, database_for

SERVICE = "report-worker"
INSTALLED_APPS = INSTALLED_APPS + ["report_worker"]
ROOT_URLCONF = "report_worker.urls"
DATABASES = database_for("report_worker")
