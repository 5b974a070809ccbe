"""collab's HTTP face (the REST API); its WebSockets are held by ws-gateway."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collab.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

from switchboard import metrics  # noqa: E402
from switchboard.health import with_health  # noqa: E402

application = with_health(get_asgi_application())
metrics.serve()
