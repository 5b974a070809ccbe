"""The report task: runs a report type, streams its progress to the owner's
/ws/tasks/ sockets, keeps the Report record current and notifies the owner at the end.

Frames are the seed's `task_update {task_id, status, progress, message, result,
timestamp}`, sent to the gateway-served group tasks.user.<id>. The record is written
before each frame, so `GET /api/reports/<task_id>/` never lags what a socket saw.

Redelivery (a worker killed mid-task) runs the task again from the start: a report is
a pure function of the data, the file is replaced atomically, and a record already
completed is not run twice.
"""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from report_worker.models import Report
from report_worker.reports import BUILDERS, ReportError
from switchboard import metrics, publish
from switchboard.config import env_float
from switchboard.notify import send_user_notification
from switchboard.protocol import frame, now_iso

log = logging.getLogger(__name__)

TASKS_GROUP = "tasks.user.{user}"


def download_url(task_id: str) -> str:
    return f"/api/reports/{task_id}/download/"


def update(report: Report, status: str, progress: int, message: str, result: dict | None = None) -> None:
    """Store the state, then push it to every /ws/tasks/ socket of the owner."""
    report.status, report.progress, report.message = status, progress, message[:2000]
    fields = ["status", "progress", "message"]
    if status in ("completed", "failed"):
        report.finished_at = timezone.now()
        fields.append("finished_at")
    report.save(update_fields=fields)
    text = frame(
        "task_update",
        task_id=report.task_id,
        status=status,
        progress=progress,
        message=message,
        result=result or {},
        timestamp=now_iso(),
    )
    try:
        publish.send_to_group_sync(TASKS_GROUP.format(user=report.user_id), text)
    except Exception:  # the record holds the state; a socket that missed it can ask
        log.exception("report %s: could not push %s", report.task_id, status)


@shared_task(bind=True, name="report_worker.generate_report")
def generate_report(self, report_id: int) -> str:
    report = Report.objects.get(pk=report_id)
    if report.status == "completed":
        # Redelivered after it finished but before the ack reached the broker.
        return report.filename
    report.attempts += 1
    report.save(update_fields=["attempts"])
    if report.attempts > 1:
        metrics.REPORTS.labels(report.kind, "retried").inc()
    started = time.monotonic()
    pause = env_float("REPORT_STEP_SECONDS")
    again = " (again, after a worker stopped)" if report.attempts > 1 else ""
    update(report, "started", 0, f"{report.kind} started{again}")

    def step(progress: int, message: str) -> None:
        update(report, "progress", max(1, min(progress, 99)), message)
        if pause:
            time.sleep(pause)  # paces the demo; a real large report is slow by itself

    try:
        data, filename, content_type = BUILDERS[report.kind](report.params, step, report.requester)
        step(95, "saving the file")
        folder = settings.REPORTS_DIR / report.task_id
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (filename + ".part")
        tmp.write_bytes(data)
        tmp.replace(folder / filename)  # atomic: a download never sees half a file
        report.filename, report.content_type = filename, content_type
        report.save(update_fields=["filename", "content_type"])
    except Exception as exc:
        message = str(exc) if isinstance(exc, ReportError) else f"the report failed: {type(exc).__name__}: {exc}"
        update(report, "failed", 0, message)
        metrics.REPORTS.labels(report.kind, "failed").inc()
        _notify(report, f"Report failed: {report.kind}", message, "/reports/")
        if isinstance(exc, ReportError):
            # What the requester asked for cannot be made (a room that does not exist):
            # the record and the owner say so; not a bug, so no traceback in the log.
            log.info("report %s failed: %s", report.task_id, message)
            return ""
        raise
    url = download_url(report.task_id)
    update(report, "completed", 100, "report ready", {"url": url, "filename": filename, "size": len(data)})
    metrics.REPORTS.labels(report.kind, "completed").inc()
    metrics.REPORT_SECONDS.labels(report.kind).observe(time.monotonic() - started)
    _notify(report, f"Report ready: {filename}", f"Your {report.kind} report is ready to download.", url)
    return filename


def _notify(report: Report, title: str, message: str, url: str) -> None:
    try:
        send_user_notification(report.user_id, title, message, url)
    except Exception:  # the report itself is done; a lost notification is logged
        log.exception("report %s: notification not sent", report.task_id)
