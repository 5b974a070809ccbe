"""Notification's data: one row per notification, owned by one user (the seed's model).

Users live in ws-gateway; a notification keeps the owner's id only.
"""

from django.db import models


class Notification(models.Model):
    user_id = models.BigIntegerField()
    title = models.CharField(max_length=200)
    message = models.TextField()
    url = models.CharField(max_length=500, blank=True)
    is_read = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user_id", "is_read"], name="notification_user_unread")]

    def as_frame_fields(self) -> dict:
        """The seed's notification frame fields (plus is_read for REST)."""
        return {
            "id": self.pk,
            "title": self.title,
            "message": self.message,
            "url": self.url,
            "timestamp": self.created_at.isoformat(),
            "is_read": self.is_read,
        }
