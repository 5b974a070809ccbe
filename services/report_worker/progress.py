"""A report's progress: stored on its row, then pushed to its owner's task stream.

`task_update` frames are exactly the seed's: {task_id, status, progress, message,
result, timestamp}. They go to the owner's group on /ws/tasks/ (served by ws-gateway
itself); the row answers GET /api/reports/<task_id>/ for clients that were away.
"""

from __future__ import annotations

from report_worker.models import Report
from switchboard import publish, routes
from switchboard.protocol import frame, now_iso


def tasks_group(user_id: int) -> str:
    route = next(r for r in routes.load().websocket if r.name == "tasks")
    return route.group.format(user=user_id)


class Progress:
    def __init__(self, report: Report):
        self.report = report

    def update(self, status: str, progress: int, message: str = "", result: dict | None = None) -> None:
        r = self.report
        r.status, r.progress, r.message = status, max(0, min(100, int(progress))), message
        Report.objects.filter(pk=r.pk).update(
            status=r.status, progress=r.progress, message=message, file_name=r.file_name
        )
        text = frame(
            "task_update",
            task_id=r.task_id,
            status=status,
            progress=r.progress,
            message=message,
            result=result or {},
            timestamp=now_iso(),
        )
        publish.send_to_group_sync(tasks_group(r.user_id), text)

    def step(self, progress: int, message: str) -> None:
        self.update("progress", progress, message)
