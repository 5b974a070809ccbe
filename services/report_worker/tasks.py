"""The report task: runs a report type, streams its progress to the owner's
/ws/tasks/ sockets, keeps the Report record current and notifies the owner at the end.

Frames are the seed's `task_update {task_id, status, progress, message, result,
timestamp}`, sent to the gateway-served group tasks.user.<id>. The record is written
before each frame, so `GET /api/reports/<task_id>/` never lags what a socket saw.

Redelivery (a worker killed mid-task, or a run outliving the visibility timeout) runs
the task again from the start, possibly while the first run still lives. Two runs of
one report may then finish at the same moment, so every write is race-safe:

* the file is stored once: one ReportFile row per report, inserted or ignored (ON
  CONFLICT DO NOTHING / INSERT OR IGNORE, one statement, no read-then-write), and the
  run that finds a row already there completes the record from that row;
* "completed" is final: each state change is a conditional UPDATE that leaves a
  completed record alone, and only the run whose UPDATE made it completed sends the
  "completed" frame and the notification (a socket and the inbox hear it once);
* a record already completed, or whose file is stored, is not built again.
"""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db.models import F
from django.utils import timezone

from report_worker.models import Report, ReportFile
from report_worker.reports import BUILDERS, ReportError
from switchboard import metrics, publish
from switchboard.config import env_float
from switchboard.notify import send_user_notification
from switchboard.protocol import frame, now_iso

log = logging.getLogger(__name__)

TASKS_GROUP = "tasks.user.{user}"


def download_url(task_id: str) -> str:
    return f"/api/reports/{task_id}/download/"


def update(report: Report, status: str, progress: int, message: str, result: dict | None = None, **fields) -> bool:
    """Store the state unless the record is completed already (another run of the same
    report finished it), then push it to every /ws/tasks/ socket of the owner. False,
    and nothing sent, when the record was completed already."""
    values = {"status": status, "progress": progress, "message": message[:2000], **fields}
    if status in ("completed", "failed"):
        values["finished_at"] = timezone.now()
    changed = Report.objects.filter(pk=report.pk).exclude(status="completed").update(**values)
    if not changed:
        return False
    for name, value in values.items():
        setattr(report, name, value)
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
    return True


def _complete(report: Report, started: float) -> str:
    """Completed from the stored file (this run's or the run that stored first): the
    notification goes out from the one run whose update completed the record."""
    stored = ReportFile.objects.filter(report_id=report.pk).values("filename", "content_type", "size").get()
    url = download_url(report.task_id)
    result = {"url": url, "filename": stored["filename"], "size": stored["size"]}
    done = update(
        report,
        "completed",
        100,
        "report ready",
        result,
        filename=stored["filename"],
        content_type=stored["content_type"],
    )
    if done:
        metrics.REPORTS.labels(report.kind, "completed").inc()
        metrics.REPORT_SECONDS.labels(report.kind).observe(time.monotonic() - started)
        _notify(report, f"Report ready: {stored['filename']}", f"Your {report.kind} report is ready to download.", url)
    return stored["filename"]


@shared_task(bind=True, name="report_worker.generate_report")
def generate_report(self, report_id: int) -> str:
    report = Report.objects.get(pk=report_id)
    if report.status == "completed":
        # Redelivered after it finished but before the ack reached the broker.
        return report.filename
    started = time.monotonic()
    if ReportFile.objects.filter(report_id=report.pk).exists():
        # An earlier run stored the file and stopped before completing the record.
        return _complete(report, started)
    Report.objects.filter(pk=report.pk).update(attempts=F("attempts") + 1)  # two runs count two
    report.refresh_from_db(fields=["attempts"])
    if report.attempts > 1:
        metrics.REPORTS.labels(report.kind, "retried").inc()
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
        # One statement, the whole file with its name: a download never sees half of
        # it, and a run that comes second keeps the first run's file (see the top).
        ReportFile.objects.bulk_create(
            [ReportFile(report=report, data=data, filename=filename, content_type=content_type, size=len(data))],
            ignore_conflicts=True,
        )
    except Exception as exc:
        message = str(exc) if isinstance(exc, ReportError) else f"the report failed: {type(exc).__name__}: {exc}"
        if not update(report, "failed", 0, message):
            # Another run of this report completed it meanwhile: the owner has the file.
            log.info("report %s: this run failed (%s), another completed it", report.task_id, message)
            return Report.objects.values_list("filename", flat=True).get(pk=report.pk)
        metrics.REPORTS.labels(report.kind, "failed").inc()
        _notify(report, f"Report failed: {report.kind}", message, "/reports/")
        if isinstance(exc, ReportError):
            # What the requester asked for cannot be made (a room that does not exist):
            # the record and the owner say so; not a bug, so no traceback in the log.
            log.info("report %s failed: %s", report.task_id, message)
            return ""
        raise
    return _complete(report, started)


def _notify(report: Report, title: str, message: str, url: str) -> None:
    try:
        send_user_notification(report.user_id, title, message, url)
    except Exception:  # the report itself is done; a lost notification is logged
        log.exception("report %s: notification not sent", report.task_id)
