"""The report worker's data: one row per requested report, owned by one user.

The row is the report's status for clients that were not connected when its
task_update frames went out (GET /api/reports/<task_id>/), and where its file is.
"""

from django.db import models


class Report(models.Model):
    STATUSES = ("queued", "started", "progress", "completed", "failed")

    task_id = models.CharField(max_length=64, unique=True)
    user_id = models.BigIntegerField()
    username = models.CharField(max_length=150)
    type = models.CharField(max_length=40)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=12, default="queued")
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["user_id", "created_at"], name="report_user_created")]

    def download_url(self) -> str:
        return f"/api/reports/{self.task_id}/download/"

    def as_dict(self) -> dict:
        return {
            "task_id": self.task_id,
            "type": self.type,
            "params": self.params,
            "status": self.status,
            "progress": self.progress,
            "message": self.message,
            "result": {"url": self.download_url()} if self.status == "completed" else {},
            "created": self.created_at.isoformat(),
            "updated": self.updated_at.isoformat(),
        }
