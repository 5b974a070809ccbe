"""ws-gateway's ASGI application: HTTP (auth API, web UI) and every WebSocket."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ws_gateway.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from switchboard import metrics  # noqa: E402
from switchboard.health import with_health  # noqa: E402
from ws_gateway import (  # noqa: E402
    autobahn_logs,
    daphne_close_codes,
    daphne_deflate,
    daphne_memory,
    daphne_send_bound,
    drain,
    twisted_writes,
)
from ws_gateway.consumer import GatewayConsumer  # noqa: E402

metrics.serve()
daphne_close_codes.install()
daphne_deflate.install()
daphne_memory.install()  # one small queue per WebSocket, protocol options on the class
autobahn_logs.install()
twisted_writes.install()
daphne_send_bound.install()
drain.install()  # SIGTERM closes every socket with 1001 before daphne stops

application = ProtocolTypeRouter(
    {
        "http": with_health(django_app),
        "websocket": GatewayConsumer.as_asgi(),
    }
)
# While draining, /readyz says 503 and late WebSockets are refused (ws_gateway/drain.py).
application = drain.guard(application)
