"""/healthz for the HTTP face of every service, as a small ASGI wrapper.

Liveness only: the process answers. Readiness checks (Redis reachable) are on
/readyz, so a Redis outage takes pods out of rotation without restarting them.
"""

from __future__ import annotations

from switchboard import redisconn


def with_health(app):
    redis = redisconn.client()

    async def wrapper(scope, receive, send):
        if scope["type"] == "http" and scope["path"] in ("/healthz", "/readyz"):
            ok = True
            if scope["path"] == "/readyz":
                try:
                    ok = bool(await redis.ping())
                except Exception:
                    ok = False
            status, body = (200, b"ok\n") if ok else (503, b"redis unreachable\n")
            await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapper
