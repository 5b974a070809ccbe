"""Django helpers for the shop's own project: the connection token of the logged-in user,
as a function and as a ready view the browser client asks at every connect, and the
seed's send_user_notification, send_new_order (create_order's dashboard push) and
send_task_update (a Celery task's progress) through the server API.

Settings (the shop's Django settings):

    SWITCHBOARD_URL = "https://switchboard.example.com"
    SWITCHBOARD_API_KEY = "sbk_..."          # scopes the helpers use: notify, dashboard, tasks
    SWITCHBOARD_TIMEOUT = 10                 # seconds per attempt; optional
    SWITCHBOARD_SHOP_KEY = "kid:secret"      # one of Switchboard's SHOP_JWT_KEYS (or a SigningKey)
    SWITCHBOARD_TOKEN_TTL = 300              # seconds; optional
    SWITCHBOARD_TOKEN_AUDIENCE = None        # Switchboard's SHOP_JWT_AUDIENCE, if it sets one
    SWITCHBOARD_TOKEN_ISSUER = None          # Switchboard's SHOP_JWT_ISSUER, if it sets one

    # urls.py
    from switchboard_client.django import token_view
    urlpatterns = [path("switchboard/token/", token_view)]

The token's `sub` is the user's primary key, its `name` the username (Switchboard's
follows it), `staff` the user's is_staff.
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from switchboard_client.client import DEFAULT_TIMEOUT, Client
from switchboard_client.tokens import DEFAULT_TTL, mint_token

_client: Client | None = None
_client_lock = threading.Lock()


def client() -> Client:
    """The process's one Client (its connections are reused; httpx's Client is thread-safe),
    made from the settings on first use."""
    global _client
    with _client_lock:
        if _client is None:
            _client = Client(
                getattr(settings, "SWITCHBOARD_URL", None),
                getattr(settings, "SWITCHBOARD_API_KEY", None),
                timeout=getattr(settings, "SWITCHBOARD_TIMEOUT", DEFAULT_TIMEOUT),
            )
        return _client


def send_user_notification(user_id, title: str, message: str, url: str | None = None, *, idempotency_key=None) -> dict:
    """Notify the shop's user `user_id` (a pk, or the user itself): stored by Switchboard,
    counted in their unread, pushed to every tab they have open; the stored notification.
    A user Switchboard has not seen yet is made and named after the shop's username.
    Pass `idempotency_key` (e.g. f"order-{order.pk}-shipped") when this call may itself be
    repeated (a task retried): Switchboard then stores it once. Raises
    switchboard_client errors (TransportError, ...) once the client's retries are spent."""
    sub, name = _user_of(user_id)
    return client().notify(title, message, url, sub=sub, name=name, idempotency_key=idempotency_key)


def user_token(user, ttl: float | None = None) -> str:
    """A connection token for a Django user of the shop."""
    return mint_token(
        user.pk,
        user.get_username(),
        staff=bool(user.is_staff),
        ttl=ttl if ttl is not None else getattr(settings, "SWITCHBOARD_TOKEN_TTL", DEFAULT_TTL),
        key=getattr(settings, "SWITCHBOARD_SHOP_KEY", None),
        audience=getattr(settings, "SWITCHBOARD_TOKEN_AUDIENCE", None),
        issuer=getattr(settings, "SWITCHBOARD_TOKEN_ISSUER", None),
    )


@never_cache  # a credential: no cache, proxy or back button keeps it
@require_GET
def token_view(request: HttpRequest) -> HttpResponse:
    """GET: the logged-in user's token as text/plain; 401 (JSON) for an anonymous user,
    so the page's client stops instead of connecting as nobody."""
    if not request.user.is_authenticated or not request.user.is_active:
        return JsonResponse({"error": "unauthorized", "message": "log in to the shop first"}, status=401)
    response = HttpResponse(user_token(request.user), content_type="text/plain; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _user_of(user_id):
    user = user_id if hasattr(user_id, "pk") else get_user_model().objects.filter(pk=user_id).first()
    return (user.pk if user is not None else user_id), (user.get_username() if user is not None else None)


def send_new_order(order_id, user, total, items=(), status: str = "pending", created=None) -> dict:
    """The seed's create_order case: show the shop's new order on every staff dashboard
    (not stored by Switchboard). `user`: the buyer (a Django user, shown by username, or
    a name); `items`: [{"name", "quantity", "price"}]."""
    buyer = user.get_username() if hasattr(user, "get_username") else str(user)
    order = {"id": order_id, "user": buyer, "total": total, "status": status, "items": list(items)}
    if created is not None:
        order["created"] = created
    return client().dashboard_order(order)


def send_task_update(
    user_id, task_id: str, status: str, progress: int = 0, message: str = "", result: dict | None = None
) -> dict:
    """The seed's send_task_update from the shop's Celery task: the task's state to the
    shop user `user_id` (a pk, or the user), on their /ws/tasks/ (stored: a page opened
    later reads it). Safe to repeat (a retried task): the final state is kept once."""
    sub, name = _user_of(user_id)
    return client().task_update(task_id, status, progress, message, result, sub=sub, name=name)
