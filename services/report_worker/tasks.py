"""The Celery task that makes a report, with progress, and a notification at the end.

A rerun after a killed worker starts the report over (its file is rewritten whole),
so redelivery is harmless. A report that cannot be made ends `failed` with a clear
message; the task itself then succeeds, so Celery does not retry what would fail again.
"""

from __future__ import annotations

import logging

from django.db.models import F

from report_worker.celery_app import app
from report_worker.models import Report
from report_worker.progress import Progress
from report_worker.reports import BUILDERS, EXTENSIONS, ReportError, reports_dir
from switchboard import metrics
from switchboard.notify import send_user_notification

log = logging.getLogger(__name__)


@app.task(name="reports.generate", bind=True)
def generate_report(self, task_id: str) -> str:
    report = Report.objects.get(task_id=task_id)
    Report.objects.filter(pk=report.pk).update(attempts=F("attempts") + 1)
    progress = Progress(report)
    progress.update("started", 0, "started")
    report.file_name = f"{task_id}.{EXTENSIONS[report.type]}"
    out = reports_dir() / report.file_name
    try:
        BUILDERS[report.type](report.params, out, progress.step)
    except ReportError as exc:
        return _failed(report, progress, str(exc))
    except Exception as exc:
        log.exception("report %s failed", task_id)
        return _failed(report, progress, f"the report could not be made ({type(exc).__name__})")
    progress.update("completed", 100, "report ready", {"url": report.download_url()})
    metrics.REPORTS.labels(report.type, "completed").inc()
    send_user_notification(
        report.user_id, "Report ready", f"Your {report.type} report is ready.", report.download_url()
    )
    return "completed"


def _failed(report: Report, progress: Progress, message: str) -> str:
    report.file_name = ""
    progress.update("failed", report.progress, message)
    metrics.REPORTS.labels(report.type, "failed").inc()
    send_user_notification(report.user_id, "Report failed", f"Your {report.type} report failed: {message}", "")
    return "failed"
