"""The report types: what each one reads (through the owning service's REST API) and the
file it makes.

A report runs with its requester's rights: every call carries a short-lived token of the
requesting user (tokens.on_behalf_of), never a staff service token, so the owning service
applies its own rules once. A non-staff orders_summary therefore covers that user's own
orders (dashboard's /api/orders/ scopes them), staff get every order; a chat transcript
covers only rooms and messages the user may read through chat's API.

A builder gets its parameters, a `step(progress, message)` callback and the requester's
Identity, and returns
(bytes, filename, content type). It raises ReportError with a message meant for the
user (an unknown room, a service that is down); the task reports it as `failed`.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import httpx

from switchboard import routes, tokens
from switchboard.config import env_int

Step = Callable[[int, str], None]
PAGE = 200


class ReportError(Exception):
    """A failure to tell the user as is."""


# Each type: its required parameters (checked by POST /api/reports/ before queueing).
TYPES: dict[str, tuple[str, ...]] = {"chat_transcript": ("room",), "orders_summary": ()}


def _get(client: httpx.Client, path: str, **params) -> dict:
    try:
        res = client.get(routes.internal_url(path), params=params)
    except httpx.HTTPError as exc:
        raise ReportError(f"could not reach {path}: {exc}") from exc
    if res.status_code == 404:
        raise ReportError(f"{path} does not exist")
    if res.status_code >= 400:
        raise ReportError(f"{path} answered {res.status_code}")
    return res.json()


class _AsRequester(httpx.Auth):
    """Each request with a fresh token of the requester: a long report outlives any one."""

    def __init__(self, identity: tokens.Identity):
        self.identity = identity

    def auth_flow(self, request):
        request.headers["Authorization"] = f"Bearer {tokens.on_behalf_of(self.identity)}"
        yield request


def _client(identity: tokens.Identity) -> httpx.Client:
    return httpx.Client(auth=_AsRequester(identity), timeout=httpx.Timeout(30))


def chat_transcript(params: dict, step: Step, identity: tokens.Identity) -> tuple[bytes, str, str]:
    """CSV of a room's messages, oldest first: seq, timestamp, user, message."""
    room = params["room"]
    limit = env_int("REPORT_MAX_ROWS")
    with _client(identity) as client:
        step(5, f"looking up room {room}")
        rooms = _get(client, "/api/chat/rooms/")["rooms"]
        info = next((r for r in rooms if r["slug"] == room), None)
        if info is None:
            raise ReportError(f"there is no chat room {room!r}")
        total = max(1, min(info["last_seq"], limit))
        rows: list[dict] = []
        after = 0
        while len(rows) < limit:
            page = _get(client, f"/api/chat/rooms/{room}/messages/", after=after, limit=PAGE)
            rows += page["messages"]
            step(10 + int(70 * min(len(rows), total) / total), f"read {len(rows)} of {total} messages")
            if not page["has_more"] or not page["messages"]:
                break
            after = page["messages"][-1]["seq"]
    step(85, f"writing {len(rows)} messages as CSV")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["seq", "timestamp", "user", "message"])
    for m in rows[:limit]:
        writer.writerow([m["seq"], m["timestamp"], m["user"], m["message"]])
    # utf-8-sig: spreadsheet programs then read non-ASCII names and messages right.
    return out.getvalue().encode("utf-8-sig"), f"chat-{room}.csv", "text/csv; charset=utf-8"


def orders_summary(params: dict, step: Step, identity: tokens.Identity) -> tuple[bytes, str, str]:
    """PDF: order count and revenue by status and the latest orders (dashboard's API):
    the requester's own orders, every order for staff."""
    limit = env_int("REPORT_MAX_ROWS")
    orders: list[dict] = []
    with _client(identity) as client:
        step(5, "counting orders")
        first = _get(client, "/api/orders/", limit=PAGE, offset=0)
        total = max(1, min(first["count"], limit))
        orders += first["orders"]
        step(10 + int(60 * min(len(orders), total) / total), f"read {len(orders)} of {total} orders")
        while len(orders) < total and first["orders"]:
            page = _get(client, "/api/orders/", limit=PAGE, offset=len(orders))
            if not page["orders"]:
                break
            orders += page["orders"]
            step(10 + int(60 * min(len(orders), total) / total), f"read {len(orders)} of {total} orders")
    step(75, "summing by status")
    counts: Counter[str] = Counter()
    revenue: dict[str, Decimal] = {}
    for o in orders:
        counts[o["status"]] += 1
        revenue[o["status"]] = revenue.get(o["status"], Decimal(0)) + Decimal(str(o["total"]))
    step(85, "drawing the PDF")
    scope = "all orders" if identity.is_staff else f"orders of {identity.username or 'user ' + str(identity.id)}"
    return _orders_pdf(orders, counts, revenue, scope), "orders-summary.pdf", "application/pdf"


def _orders_pdf(orders: list[dict], counts: Counter, revenue: dict[str, Decimal], scope: str = "") -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, title="Orders summary")
    grid = TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey)])
    by_status = [["Status", "Orders", "Revenue"]]
    by_status += [[s, str(counts[s]), f"{revenue[s]:.2f}"] for s in sorted(counts)]
    by_status.append(["All", str(sum(counts.values())), f"{sum(revenue.values(), Decimal(0)):.2f}"])
    latest = [["#", "User", "Total", "Status", "Created"]]
    latest += [[str(o["id"]), o["user"], str(o["total"]), o["status"], o["created"][:19]] for o in orders[:50]]
    story = [
        Paragraph("Orders summary", styles["Title"]),
        Paragraph(f"{len(orders)} orders" + (f" ({scope})" if scope else ""), styles["Normal"]),
        Spacer(1, 12),
        Table(by_status, style=grid),
        Spacer(1, 18),
        Paragraph("Latest orders", styles["Heading2"]),
        Table(latest, style=grid, repeatRows=1),
    ]
    doc.build(story)
    return buf.getvalue()


BUILDERS = {"chat_transcript": chat_transcript, "orders_summary": orders_summary}
