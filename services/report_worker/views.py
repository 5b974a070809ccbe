"""The report worker's REST API (its HTTP face; the work runs in Celery).

POST /api/reports/ {"type": "chat_transcript", "room": "<slug>"} | {"type": "orders_summary"}
     -> 202 {"task_id", "message"}; 400 with a message for an unknown type or a
     missing or bad parameter. Progress streams on /ws/tasks/ as task_update frames.
GET  /api/reports/                 the caller's reports, newest first
GET  /api/reports/<task_id>/       its status (for a client that was not connected)
GET  /api/reports/<task_id>/download/   the file, for its owner only (404 for others)
GET  /api/reports/stats/           staff: {"running", "completed_today", "failed_today"}
"""

from __future__ import annotations

import uuid

from django.http import FileResponse
from django.utils import timezone
from pydantic import TypeAdapter, ValidationError

from report_worker.models import Report
from report_worker.reports import CONTENT_TYPES, ReportRequest, reports_dir
from switchboard.http import api, json_error, json_response

_request = TypeAdapter(ReportRequest)


@api(["GET", "POST"])
def reports(request):
    if request.method == "GET":
        rows = Report.objects.filter(user_id=request.identity.id).order_by("-created_at")[:50]
        return json_response({"reports": [r.as_dict() for r in rows]})
    try:
        data = _request.validate_json(request.body or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        if first["type"] in ("union_tag_invalid", "union_tag_not_found"):
            return json_error(400, "unknown_type", "type must be one of: chat_transcript, orders_summary")
        return json_error(400, "invalid_body", f"{where}: {first['msg']}")
    from report_worker.tasks import generate_report  # imports Celery only when needed

    params = data.model_dump(exclude={"type"})
    report = Report.objects.create(
        task_id=str(uuid.uuid4()),
        user_id=request.identity.id,
        username=request.identity.username,
        type=data.type,
        params=params,
    )
    generate_report.apply_async(args=[report.task_id], task_id=report.task_id)
    return json_response({"task_id": report.task_id, "message": "report queued; progress on /ws/tasks/"}, status=202)


def _own(request, task_id: str) -> Report | None:
    return Report.objects.filter(task_id=task_id, user_id=request.identity.id).first()


@api(["GET"])
def status(request, task_id: str):
    report = _own(request, task_id)
    if report is None:
        return json_error(404, "not_found", "no such report")
    return json_response(report.as_dict())


@api(["GET"])
def download(request, task_id: str):
    report = _own(request, task_id)
    if report is None or report.status != "completed" or not report.file_name:
        return json_error(404, "not_found", "no such report file")
    path = reports_dir() / report.file_name
    if not path.exists():
        return json_error(404, "not_found", "the report file is gone")
    ext = report.file_name.rsplit(".", 1)[1]
    return FileResponse(
        path.open("rb"),
        content_type=CONTENT_TYPES[ext],
        as_attachment=True,
        filename=f"{report.type}-{report.task_id[:8]}.{ext}",
    )


@api(["GET"], staff=True)
def stats(request):
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = Report.objects.filter(updated_at__gte=today)
    return json_response(
        {
            "running": Report.objects.filter(status__in=("queued", "started", "progress")).count(),
            "completed_today": rows.filter(status="completed").count(),
            "failed_today": rows.filter(status="failed").count(),
        }
    )
