"""The notification service's data: one row per notification of one user.

Users live in ws-gateway's database; a notification keeps only the user's id, so this
service never asks another who a user is.
"""

from django.db import models


class Notification(models.Model):
    user_id = models.BigIntegerField()
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    is_read = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # The inbox command that stored it (ownership.Claim.command_id): a new shard owner
    # redoing a command the old one had stored finds it instead of storing it twice.
    command = models.CharField(max_length=40, null=True, blank=True, unique=True)
    # The server API's Idempotency-Key (the shop's retry of one notification): unique per
    # user in the database, so two retries at once store it once (views.send).
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)

    class Meta:
        # Every query is "this user's (unread) notifications, newest first".
        indexes = [models.Index(fields=["user_id", "is_read", "-id"], name="notif_user_unread")]
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="notif_user_idempotency_key",
            )
        ]
