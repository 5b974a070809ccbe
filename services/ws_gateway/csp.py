"""The Content-Security-Policy of ws-gateway's pages: django-csp's middleware, plus the
page's own WebSocket origin in connect-src.

CSP3 makes 'self' match ws:/wss: on the page's host and port (Chromium does), but
browsers that predate that rule (Safari before 15.4, older Firefox) would block every
socket of the page; naming ws(s)://<host> explicitly costs nothing. The host is the
request's validated Host (ALLOWED_HOSTS), so a client cannot widen the policy to
another origin."""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts

from switchboard.middleware import InlineHooks


class PageCSPMiddleware(InlineHooks, CSPMiddleware):
    """Its hooks only build a header: on the event loop (switchboard/middleware.py)."""

    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        ws_origin = ("wss://" if request.is_secure() else "ws://") + request.get_host()
        update = dict(parts.update or {})
        extra = update.get("connect-src") or []
        update["connect-src"] = [*([extra] if isinstance(extra, str) else extra), ws_origin]
        parts.update = update
        return parts
