"""chat's HTTP face (the REST API); its WebSockets are held by ws-gateway."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chat.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

from switchboard import inbox, metrics  # noqa: E402
from switchboard.health import with_health  # noqa: E402

application = with_health(get_asgi_application())
inbox.export_backlog()  # this service's inbox depth, exported while its worker is down too
metrics.serve()
