"""The dashboard's REST API.

POST /api/orders/  {"total": "12.50", "items"?: [{"name", "quantity", "price"}]}
     (bearer token; optional Idempotency-Key header) -> 201 order | 200 the same order
     for a repeated key | 409 for a key reused with another body | 400 with a message. Staff dashboards get new_order at once;
     the buyer gets a notification.
GET  /api/orders/?limit=&offset=  -> {"orders": [...], "count": n}: the caller's own
     orders, every order for staff (service tokens are staff), newest first.
POST /api/dashboard/alerts/  either Alertmanager's webhook JSON (version 4) with
     `Authorization: Bearer <ALERT_WEBHOOK_SECRET>`, or a staff token with
     {"level": "info|warning|critical", "message": "..."} (or an Alertmanager body).
     -> 200 {"received": n, "stored": n, "truncated": n, "alerts": [...]}; each new alert is stored and
     pushed as an `alert` frame; an alert state Alertmanager repeats is stored once.
GET  /api/dashboard/alerts/?limit=  staff: the latest alerts, newest first.
POST /api/dashboard/events/  the server API (API key, scope dashboard):
     {"type": "new_order", "order": {...the shop's order...}, "store"?: false} pushes the
     seed's new_order frame (stored as a Switchboard order only with "store": true), or
     {"type": "alert", "level", "message"} stores and pushes an alert -> 201.
"""

from __future__ import annotations

import hmac
import logging
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import orjson
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from dashboard import live, store
from switchboard import metrics, serverapi
from switchboard.config import env_list
from switchboard.http import api, json_error, json_response
from switchboard.tokens import Identity

log = logging.getLogger(__name__)

MAX_PAGE = 200
# Alertmanager does not retry a 4xx, so a notification over this size is not refused
# (that would drop it all): the first ones are kept and the rest counted as truncated.
MAX_ALERTS_PER_POST = 500
IDEMPOTENCY_KEY_MAX = 64


# ------------------------------------------------------------------- orders ----
class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(ge=1, le=10_000)
    price: Decimal = Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False)


class NewOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    total: Decimal = Field(gt=0, max_digits=12, decimal_places=2, allow_inf_nan=False)
    items: list[Item] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def items_add_up(self):
        if self.items:
            expected = sum((i.price * i.quantity for i in self.items), Decimal(0))
            if expected != self.total:
                raise ValueError(f"total {self.total} is not the sum of the items ({expected:.2f})")
        return self


class OrdersQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0, le=10**9)


@api(
    ["GET", "POST"],
    body=NewOrder,
    query=OrdersQuery,
    responses={
        "GET": {200: "your orders (every order for staff), newest first"},
        "POST": {
            200: "the order this Idempotency-Key already created",
            201: "the new order",
            409: "this Idempotency-Key was used for a different order",
        },
    },
)
def orders(request, data: NewOrder | None = None, query: OrdersQuery | None = None):
    if request.method == "GET":
        page, count = store.list_orders(request.identity, query.limit, query.offset)
        return json_response({"orders": [o.as_dict() for o in page], "count": count})

    key = request.headers.get("Idempotency-Key") or None
    if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
        return json_error(400, "invalid_header", f"Idempotency-Key is longer than {IDEMPOTENCY_KEY_MAX} characters")
    items = [i.model_dump(mode="json") for i in data.items]
    order, created = store.create_order(request.identity, data.total, items, key)
    if not created:
        if order.total != data.total or order.items != items:
            # A key reused for another order is a client bug; answering with the first
            # order would hide it.
            return json_error(409, "idempotency_key_reused", "this Idempotency-Key was used for a different order")
        metrics.DASHBOARD_ORDERS.labels("repeat").inc()
        return json_response(order.as_dict(), status=200)
    metrics.DASHBOARD_ORDERS.labels("created").inc()
    live.order_pushed(order)
    return json_response(order.as_dict(), status=201)


# ------------------------------------------------------------------- alerts ----
class AmAlert(BaseModel):
    """One alert of Alertmanager's webhook payload (version 4); other keys ignored."""

    model_config = ConfigDict(extra="ignore")
    status: Literal["firing", "resolved"] = "firing"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    # strict: an RFC 3339 string, as the schema says (lax pydantic also takes a number).
    startsAt: datetime | None = Field(default=None, strict=True)  # noqa: N815 (Alertmanager's spelling)
    fingerprint: str = Field(default="", max_length=64)


class AmPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")
    version: str = "4"
    status: str = "firing"
    alerts: list[AmAlert]


class StaffAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: Literal["info", "warning", "critical"] = "info"
    message: str = Field(min_length=1, max_length=2000)


# Alertmanager's severity labels are free text; these are the common spellings.
SEVERITY = {
    "critical": "critical",
    "page": "critical",
    "error": "critical",
    "high": "critical",
    "warning": "warning",
    "warn": "warning",
    "medium": "warning",
}


def level_of(labels: dict[str, str]) -> str:
    return SEVERITY.get(labels.get("severity", "").strip().lower(), "info")


def _am_fields(alert: AmAlert) -> dict:
    name = alert.labels.get("alertname", "")[:200]
    text = alert.annotations.get("summary") or alert.annotations.get("description") or name or "alert"
    if alert.status == "resolved":
        text = f"Resolved: {text}"
    return {
        "source": "alertmanager",
        "level": level_of(alert.labels),
        "status": alert.status,
        "name": name,
        "message": text[:2000],
        "fingerprint": alert.fingerprint or store.alert_fingerprint(alert.labels),
        "starts_at": alert.startsAt,
        "labels": alert.labels,
    }


def _webhook_secret_matches(request) -> bool:
    # Several comma-separated secrets are all accepted, so a secret can be rotated
    # without a gap: add the new one, switch Alertmanager, then drop the old one.
    secrets = env_list("ALERT_WEBHOOK_SECRET")
    header = request.headers.get("Authorization", "")
    if not secrets or header[:7].lower() != "bearer ":
        return False
    offered = header[7:].strip().encode()
    # Compare with every one, so the time taken says nothing about which matched.
    return sum(hmac.compare_digest(offered, s.encode()) for s in secrets) > 0


def _invalid(exc: ValidationError):
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return json_error(400, "invalid_body", f"{where}: {first['msg']}")


class AlertsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)


# The view tells the two bodies apart itself (by the webhook secret, then by "alerts").
ALERT_BODY = TypeAdapter(StaffAlert | AmPayload).json_schema(ref_template="#/components/schemas/{model}")


@api(
    ["GET", "POST"],
    auth=False,
    query=AlertsQuery,
    body_schema=ALERT_BODY,
    responses={
        "GET": {200: "the latest alerts, newest first", 401: "no staff token", 403: "staff only"},
        "POST": {200: "received, stored and pushed", 401: "neither the webhook secret nor a token", 403: "staff only"},
    },
)
def alerts(request, query: AlertsQuery | None = None):
    from_alertmanager = request.method == "POST" and _webhook_secret_matches(request)
    identity = None if from_alertmanager else request.identity
    if not from_alertmanager:
        if identity is None:
            return json_error(401, "unauthorized", "send the webhook secret or a staff bearer token")
        if not identity.is_staff:
            return json_error(403, "forbidden", "staff only")
    if request.method == "GET":
        return json_response({"alerts": [a.as_dict() for a in store.recent_alerts(query.limit)]})

    try:
        raw = request.body or b"{}"
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json_error(400, "invalid_json", "the body is not JSON")
    try:
        if from_alertmanager or (isinstance(body, dict) and "alerts" in body):
            payload = AmPayload.model_validate_json(raw)
            candidates = [_am_fields(a) for a in payload.alerts[:MAX_ALERTS_PER_POST]]
            truncated = max(0, len(payload.alerts) - MAX_ALERTS_PER_POST)
            if truncated:
                log.warning("alert webhook: %d alerts over the limit of %d ignored", truncated, MAX_ALERTS_PER_POST)
                metrics.DASHBOARD_ALERTS.labels("alertmanager", "truncated").inc(truncated)
            source = "alertmanager"
        else:
            plain = StaffAlert.model_validate_json(raw)
            candidates = [
                {"source": "staff", "level": plain.level, "message": plain.message, "created_by": identity.username}
            ]
            source = "staff"
            truncated = 0
    except ValidationError as exc:
        return _invalid(exc)
    stored = []
    for fields in candidates:
        alert, created = store.store_alert(**fields)
        metrics.DASHBOARD_ALERTS.labels(source, "stored" if created else "repeat").inc()
        if created:
            stored.append(alert)
            live.alert_pushed(alert)
    return json_response(
        {
            "received": len(candidates),
            "stored": len(stored),
            "truncated": truncated,
            "alerts": [a.as_dict() for a in stored],
        }
    )


# --------------------------------------------------------------- server API ----
class ShopOrder(BaseModel):
    """The shop's own order, shown on the dashboard as the seed's new_order frame."""

    model_config = ConfigDict(extra="forbid")
    id: str | int = Field(description="the shop's order id")
    user: str = Field(min_length=1, max_length=150, description="the buyer, as staff should read it")
    user_id: int | None = Field(default=None, ge=1, le=2**53, description="the buyer's local id (needed to store)")
    total: Decimal = Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False)
    status: str = Field(default="pending", min_length=1, max_length=16)
    items: list[Item] = Field(default_factory=list, max_length=200)
    created: datetime | None = None

    @model_validator(mode="after")
    def short_id(self):
        if isinstance(self.id, str) and not 1 <= len(self.id) <= 64:
            raise ValueError("id: 1..64 characters")
        return self


class OrderEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["new_order"]
    order: ShopOrder
    # True: also stored as a Switchboard order (counted in the stats, its buyer notified).
    store: bool = False


class AlertEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["alert"]
    level: Literal["info", "warning", "critical"] = "info"
    message: str = Field(min_length=1, max_length=2000)


EVENT_BODY = TypeAdapter(Annotated[OrderEvent | AlertEvent, Field(discriminator="type")])


@api(
    ["POST"],
    key_scope="dashboard",
    body_schema=EVENT_BODY.json_schema(ref_template="#/components/schemas/{model}"),
    responses={
        "POST": {
            201: "pushed to every staff dashboard (an alert, and an order asked to be, stored first)",
            409: "store: this Idempotency-Key was used for a different order",
        }
    },
)
def events(request):
    """Push a new_order or an alert to the staff dashboard from the shop's back end."""
    try:
        event = EVENT_BODY.validate_json(request.body or b"{}")
    except ValidationError as exc:
        return _invalid(exc)
    if isinstance(event, AlertEvent):
        alert, _ = store.store_alert(
            source="shop", level=event.level, message=event.message, created_by=request.api_key.name[:150]
        )
        metrics.DASHBOARD_ALERTS.labels("shop", "stored").inc()
        live.alert_pushed(alert)
        return json_response({"type": "alert", "alert": alert.as_dict()}, status=201)
    order = event.order
    items = [i.model_dump(mode="json") for i in order.items]
    if event.store:
        if order.user_id is None:
            return json_error(400, "invalid_body", "order.user_id: needed to store the order (the buyer's local id)")
        try:
            key = serverapi.idempotency_key(request)
        except ValueError as exc:
            return json_error(400, "invalid_header", str(exc))
        stored, created = store.create_order(Identity(order.user_id, order.user), order.total, items, key)
        if not created and (stored.total != order.total or stored.items != items):
            return json_error(409, "idempotency_key_reused", "this Idempotency-Key was used for a different order")
        if created:
            metrics.DASHBOARD_ORDERS.labels("created").inc()
            live.order_pushed(stored)
        return json_response({"type": "new_order", "order": stored.as_dict(), "stored": True}, status=201)
    # The shop's order, as the frame shows it: the shop's id, never stored here.
    shown = {
        "id": order.id,
        "user": order.user,
        "user_id": order.user_id,
        "total": f"{order.total:.2f}",
        "status": order.status,
        "items": items,
        "created": (order.created or timezone.now()).isoformat(),
    }
    live.shop_order_pushed(shown)
    return json_response({"type": "new_order", "order": shown, "stored": False}, status=201)
