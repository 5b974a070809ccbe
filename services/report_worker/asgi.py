"""report-worker's HTTP face: the reports API."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "report_worker.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

from switchboard import metrics  # noqa: E402
from switchboard.health import with_health  # noqa: E402

application = with_health(get_asgi_application())
metrics.serve()
