"""The report worker's REST API (behind nginx's /api/reports/).

POST /api/reports/ {"type": "chat_transcript", "room": "<slug>"} | {"type": "orders_summary"}
     -> 202 {"task_id", "status_url"}; 400 for an unknown type or a missing parameter
GET  /api/reports/                     the caller's reports, newest first
GET  /api/reports/<task_id>/           status for a client that was not connected
GET  /api/reports/<task_id>/download/  the file, for its owner only (404 for anyone else)
GET  /api/reports/stats/               staff: {"running", "completed_today", "failed_today"}
POST /api/reports/task-updates/        the server API (API key, scope tasks): the progress
     of the shop's own task, stored as the user's record (kind "shop") and pushed to
     their /ws/tasks/ as the seed's task_update; GET /api/reports/<task_id>/ reads it

Progress itself streams on /ws/tasks/ (see tasks.py).
"""

from __future__ import annotations

import io
import logging
import uuid
from typing import Literal

import orjson
from django.http import FileResponse
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field, field_validator

from report_worker.models import Report, ReportFile
from report_worker.reports import TYPES
from report_worker.tasks import TASKS_GROUP, download_url, generate_report
from switchboard import publish, serverapi, users
from switchboard.http import api, json_error, json_response
from switchboard.protocol import frame, now_iso

log = logging.getLogger(__name__)
SHOP_KIND = "shop"
TERMINAL = ("completed", "failed")


def as_dict(r: Report) -> dict:
    data = {
        "task_id": r.task_id,
        "type": r.kind,
        "params": r.params,
        "status": r.status,
        "progress": r.progress,
        "message": r.message,
        "result": {},
        "attempts": r.attempts,
        "created": r.created_at.isoformat(),
        "finished": r.finished_at.isoformat() if r.finished_at else None,
    }
    if r.kind == SHOP_KIND:
        data["result"] = r.result
    elif r.status == "completed":
        data["result"] = {"url": download_url(r.task_id), "filename": r.filename}
    return data


def _parse_request(body: bytes) -> tuple[str, dict] | str:
    """(type, params) or an error message for the 400."""
    try:
        data = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        return "the body must be JSON"
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return f'send {{"type": ...}} with one of: {", ".join(TYPES)}'
    kind = data["type"]
    if kind not in TYPES:
        return f"unknown report type {kind[:40]!r}; known types: {', '.join(TYPES)}"
    params = {}
    for name in TYPES[kind]:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            return f"{kind} needs {name!r} (a non-empty string)"
        params[name] = value.strip()[:100]
    return kind, params


class ReportsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=20, ge=1, le=100)


def request_schema() -> dict:
    """The body _parse_request accepts, from TYPES: one shape per report type."""
    return {
        "oneOf": [
            {
                "type": "object",
                "required": ["type", *names],
                "properties": {"type": {"const": kind}, **{n: {"type": "string", "pattern": r"\S"} for n in names}},
            }
            for kind, names in TYPES.items()
        ]
    }


@api(
    ["GET", "POST"],
    query=ReportsQuery,
    body_schema=request_schema(),
    responses={
        "GET": {200: "your reports, newest first"},
        "POST": {202: "queued: its task_id and status_url", 400: "unknown type or a missing parameter"},
    },
)
def reports(request, query: ReportsQuery | None = None):
    me = request.identity
    if request.method == "GET":
        rows = Report.objects.filter(user_id=me.id).order_by("-id")[: query.limit]
        return json_response({"reports": [as_dict(r) for r in rows]})
    parsed = _parse_request(request.body)
    if isinstance(parsed, str):
        return json_error(400, "invalid_report", parsed)
    kind, params = parsed
    # The record first, under the id Celery will use: the task, the status API and the
    # download check all find the owner there.
    report = Report.objects.create(
        task_id=str(uuid.uuid4()), user_id=me.id, username=me.username, is_staff=me.is_staff, kind=kind, params=params
    )
    generate_report.apply_async((report.pk,), task_id=report.task_id)
    return json_response(
        {"task_id": report.task_id, "status": "pending", "status_url": f"/api/reports/{report.task_id}/"}, status=202
    )


def _own(request, task_id: str) -> Report | None:
    # Someone else's report answers exactly like a missing one.
    return Report.objects.filter(task_id=task_id, user_id=request.identity.id).first()


@api(["GET"], responses={"GET": {200: "the report's status"}})
def report(request, task_id: str):
    r = _own(request, task_id)
    if r is None:
        return json_error(404, "not_found", "no such report")
    return json_response(as_dict(r))


@api(
    ["GET"],
    responses={
        "GET": {
            200: "file: the report file, for its owner only",
            409: "not completed yet",
            410: "the file is no longer available",
        }
    },
)
def download(request, task_id: str):
    r = _own(request, task_id)
    if r is None or r.kind == SHOP_KIND:  # a shop task has no file here
        return json_error(404, "not_found", "no such report")
    if r.status != "completed":
        return json_error(409, "not_ready", f"the report is {r.status}")
    stored = ReportFile.objects.filter(report=r).values("data", "filename", "content_type").first()
    if stored is None:
        return json_error(410, "gone", "the report file is no longer available")
    return FileResponse(
        io.BytesIO(bytes(stored["data"])),
        as_attachment=True,
        filename=stored["filename"],
        content_type=stored["content_type"],
    )


@api(["GET"], staff=True, responses={"GET": {200: "running, completed_today, failed_today"}})
def stats(request):
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    reports = Report.objects.exclude(kind=SHOP_KIND)  # the shop's own tasks are not reports
    finished = reports.filter(finished_at__gte=today)
    return json_response(
        {
            "running": reports.filter(status__in=["pending", "started", "progress"]).count(),
            "completed_today": finished.filter(status="completed").count(),
            "failed_today": finished.filter(status="failed").count(),
        }
    )


class TaskUpdateBody(serverapi.UserRef):
    task_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    status: Literal["started", "progress", "completed", "failed"]
    progress: int = Field(default=0, ge=0, le=100)
    message: str = Field(default="", max_length=2000)
    result: dict = Field(default_factory=dict)

    @field_validator("result")
    @classmethod
    def small_result(cls, value: dict) -> dict:
        if len(orjson.dumps(value)) > 8192:
            raise ValueError("result: at most 8 KiB of JSON")
        return value


@api(
    ["POST"],
    key_scope="tasks",
    body=TaskUpdateBody,
    responses={
        "POST": {
            200: "the task's stored state (stored and pushed, or a repeat of its final state)",
            409: "the task id is another user's or a report's, or the task has finished with another state",
            502: "the user directory did not answer",
        }
    },
)
def task_updates(request, data: TaskUpdateBody):
    """Report the progress of the shop's own long task to one user's /ws/tasks/."""
    user_id = users.local_user_id(data, "report-worker")  # 502 when ws-gateway cannot answer (@api)
    values = {"status": data.status, "progress": data.progress, "message": data.message, "result": data.result}
    if data.status in TERMINAL:
        values["finished_at"] = timezone.now()
    row, created = Report.objects.get_or_create(
        task_id=data.task_id, defaults={"user_id": user_id, "kind": SHOP_KIND, "params": {}, **values}
    )
    if row.kind != SHOP_KIND or row.user_id != user_id:
        return json_error(409, "task_id_taken", "this task id is another user's task or a report")
    if not created:
        # Stored first, pushed after; a finished task keeps its final state (a late
        # "progress" never reopens it), and a retry of that final state is answered alike.
        changed = Report.objects.filter(pk=row.pk).exclude(status__in=TERMINAL).update(**values)
        row.refresh_from_db()
        if not changed:
            if (row.status, row.progress, row.message, row.result) == (
                data.status,
                data.progress,
                data.message,
                data.result,
            ):
                return json_response(as_dict(row))
            return json_error(409, "task_finished", f"the task is {row.status} already")
    text = frame(
        "task_update",
        task_id=row.task_id,
        status=row.status,
        progress=row.progress,
        message=row.message,
        result=row.result,
        timestamp=now_iso(),
    )
    try:
        publish.send_to_group_sync(TASKS_GROUP.format(user=user_id), text)
    except Exception:  # stored: a socket that missed it reads GET /api/reports/<task_id>/
        log.exception("shop task %s: could not push %s", row.task_id, row.status)
    return json_response(as_dict(row))
