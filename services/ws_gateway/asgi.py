"""ws-gateway's ASGI application: HTTP (auth API, web UI) and every WebSocket."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ws_gateway.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from switchboard import metrics  # noqa: E402
from switchboard.health import with_health  # noqa: E402
from ws_gateway import drain, patches  # noqa: E402
from ws_gateway.consumer import GatewayConsumer  # noqa: E402

metrics.serve()
# Every daphne/autobahn/Twisted patch, each checked against the locked version and the
# private names it touches first (refuses to start otherwise); drain's SIGTERM among them.
patches.install()

application = ProtocolTypeRouter(
    {
        "http": with_health(django_app),
        "websocket": GatewayConsumer.as_asgi(),
    }
)
# While draining, /readyz says 503 and late WebSockets are refused (ws_gateway/drain.py).
application = drain.guard(application)

# A gateway holds ~90 long-lived objects per socket, and CPython's full collection
# walks all of them each time the heap grows by a quarter: while 5,000 sockets
# connected that was 8 full collections, 2.2 s of CPU, and the collector took 18 % of
# the process's CPU; with these settings, 5 % (docs/performance.md). What the app
# imported is frozen out of the collector's way, and a full collection waits for 100
# middle-generation ones instead of 10; young cycles are collected as before.
gc.freeze()
gc.set_threshold(5000, 20, 100)
