"""The report types: what each one needs from the request, and how it is built.

Data comes from the owning services' REST APIs (chat for messages, dashboard for
orders) with a short-lived service token; the report worker never reads another
service's database. Each builder reports progress in steps; REPORT_STEP_DELAY_SECONDS
slows the steps down for demos and for tests that kill a worker mid-report.
"""

from __future__ import annotations

import csv
import time
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from switchboard import tokens
from switchboard.config import env, env_float

Step = Callable[[int, str], None]
PAGE = 200


class ReportError(Exception):
    """A report that cannot be made, with a message for its owner."""


class ChatTranscript(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["chat_transcript"]
    room: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class OrdersSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["orders_summary"]


ReportRequest = Annotated[ChatTranscript | OrdersSummary, Field(discriminator="type")]
EXTENSIONS = {"chat_transcript": "csv", "orders_summary": "pdf"}
CONTENT_TYPES = {"csv": "text/csv", "pdf": "application/pdf"}


def reports_dir() -> Path:
    path = Path(env("SWITCHBOARD_DATA_DIR")) / "reports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _get(path: str, params: dict) -> dict:
    res = httpx.get(
        f"{env('GATEWAY_URL')}{path}",
        params=params,
        timeout=15,
        headers={"Authorization": f"Bearer {tokens.service_token('report-worker')}"},
    )
    if res.status_code == 404:
        raise ReportError(
            res.json().get("message", "not found")
            if res.headers.get("content-type", "").startswith("application/json")
            else f"{path} not found"
        )
    res.raise_for_status()
    return res.json()


def _pause() -> None:
    delay = env_float("REPORT_STEP_DELAY_SECONDS")
    if delay > 0:
        time.sleep(delay)


def build_chat_transcript(params: dict, out: Path, step: Step) -> None:
    room = params["room"]
    step(5, f"reading #{room}")
    _pause()
    rows, after = [], 0
    while True:
        page = _get(f"/api/chat/rooms/{room}/messages/", {"after": after, "limit": PAGE})
        rows += page["messages"]
        if not page["messages"] or not page["has_more"]:
            break
        after = page["messages"][-1]["seq"]
        step(min(60, 10 + len(rows) // PAGE), f"read {len(rows)} messages")
    step(60, f"read {len(rows)} messages")
    _pause()
    step(80, "writing CSV")
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seq", "timestamp", "user", "message"])
        for m in rows:
            writer.writerow([m["seq"], m["timestamp"], m["user"], m["message"]])
    _pause()


def build_orders_summary(params: dict, out: Path, step: Step) -> None:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    step(5, "reading orders")
    _pause()
    orders, offset = [], 0
    while True:
        page = _get("/api/orders/", {"limit": PAGE, "offset": offset})
        orders += page["orders"]
        offset += len(page["orders"])
        if not page["orders"] or offset >= page["count"]:
            break
        step(min(50, 10 + offset // PAGE), f"read {offset} of {page['count']} orders")
    step(50, f"read {len(orders)} orders")
    _pause()
    step(70, "summing")
    by_day: dict[str, list[Decimal]] = defaultdict(list)
    by_status: dict[str, int] = defaultdict(int)
    for o in orders:
        by_day[o["created"][:10]].append(Decimal(o["total"]))
        by_status[o["status"]] += 1
    _pause()
    step(85, "drawing PDF")
    styles = getSampleStyleSheet()
    total = sum((sum(v) for v in by_day.values()), Decimal(0))
    day_rows = [["Day", "Orders", "Revenue"]] + [
        [day, str(len(v)), f"{sum(v):.2f}"] for day, v in sorted(by_day.items(), reverse=True)
    ]
    status_rows = [["Status", "Orders"]] + [[s, str(n)] for s, n in sorted(by_status.items())]
    style = TableStyle(
        [("GRID", (0, 0), (-1, -1), 0.5, colors.grey), ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey)]
    )
    doc = SimpleDocTemplate(str(out), pagesize=A4, title="Orders summary")
    doc.build(
        [
            Paragraph("Orders summary", styles["Title"]),
            Paragraph(f"{len(orders)} orders, revenue {total:.2f}", styles["Normal"]),
            Spacer(1, 12),
            Table(status_rows, style=style),
            Spacer(1, 12),
            Table(day_rows, style=style),
        ]
    )


BUILDERS = {"chat_transcript": build_chat_transcript, "orders_summary": build_orders_summary}
