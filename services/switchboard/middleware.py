"""The middleware every service runs (settings_base.MIDDLEWARE), run on the event loop.

Django's own SecurityMiddleware, CommonMiddleware and XFrameOptionsMiddleware are
MiddlewareMixin classes: under ASGI each of their process_request/process_response
hooks is handed to the request's worker thread with sync_to_async and back, five round
trips per request before the view's own. Their hooks only read the request and set
headers (no database, no network, nothing that blocks), so here they run inline on the
loop, with the same code and the same results. Issue 21: at 100 staff notifications/s
these hand-offs were a tenth of notification-http's CPU per POST, and every
ws-gateway user lookup paid them too.

ws-gateway's AuthenticationMiddleware (lazy users) and CSP middleware run inline too.
Only a middleware whose hooks never block may use InlineHooks (the session middleware
writes the database; CSRF's keeps Django's hand-off as well, it is not on the hot path).
"""

from __future__ import annotations

from django.contrib.auth import middleware as auth
from django.middleware import clickjacking, common, security


class InlineHooks:
    """MiddlewareMixin's async path without the thread hand-offs, for hooks that never block."""

    async def __acall__(self, request):
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return response


class SecurityMiddleware(InlineHooks, security.SecurityMiddleware):
    """nosniff, Referrer-Policy, COOP (and the HTTPS redirect when configured)."""


class CommonMiddleware(InlineHooks, common.CommonMiddleware):
    """APPEND_SLASH redirects, Content-Length."""


class XFrameOptionsMiddleware(InlineHooks, clickjacking.XFrameOptionsMiddleware):
    """X-Frame-Options (DENY: no page of Switchboard is meant to be framed)."""


class AuthenticationMiddleware(InlineHooks, auth.AuthenticationMiddleware):
    """request.user and request.auser, both lazy: the database is read (in the view's
    thread, or awaited) only when a view asks who the session's user is."""
