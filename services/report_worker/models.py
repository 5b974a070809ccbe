"""The report worker's data: one record per requested report, and its file.

The record, not Celery's result backend, is what `GET /api/reports/<task_id>/` and the
download check read: it names the owner, and it outlives the broker's keys. The file
lives in the service's database too (ReportFile), not on a disk of the process that
made it: whichever Celery worker makes a report, any HTTP replica serves its download
(docs/operations.md), in make run, compose and Kubernetes alike.
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
    # A shop task's (kind "shop", the server API) last result, as the shop sent it; a
    # report's result is its download link, made from the record.
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user_id", "-id"], name="report_user")]


class ReportFile(models.Model):
    """The finished file of a report: kept apart from the record so that listing reports
    never reads their contents.

    One row per report, written once (insert-or-ignore on the unique report): when two
    runs of one report finish at once (a redelivery while the first run still lives),
    the first file stored is the report's, whole, with its own name and type, and the
    other run completes the record from that row (tasks.py)."""

    report = models.OneToOneField(Report, on_delete=models.CASCADE, related_name="file")
    data = models.BinaryField()
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
