"""The report worker's data: one record per requested report.

The record, not Celery's result backend, is what `GET /api/reports/<task_id>/` and the
download check read: it names the owner, and it outlives the broker's keys.
"""

from django.db import models


class Report(models.Model):
    @property
    def requester(self):
        from switchboard.tokens import Identity

        return Identity(self.user_id, self.username, self.is_staff)

    STATUSES = ["pending", "started", "progress", "completed", "failed"]

    task_id = models.CharField(max_length=64, unique=True)
    user_id = models.BigIntegerField()
    # Who asked, as their token said: the report reads the owning services with this
    # identity (reports.py), so it shows what that user may read and nothing more.
    username = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    kind = models.CharField(max_length=32)
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=16, default="pending")
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.TextField(blank=True)
    filename = models.CharField(max_length=200, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    # How many times a worker started it: above 1 means a redelivery after a crash.
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user_id", "-id"], name="report_user")]
