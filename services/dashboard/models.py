"""The dashboard's data: orders and alerts, in its own database.

Users live in ws-gateway's database; an order keeps the buyer's id and username as
they were, so the dashboard never asks another service who ordered what.
"""

from django.db import models
from django.utils import timezone


class Order(models.Model):
    STATUSES = [("pending", "pending"), ("paid", "paid"), ("shipped", "shipped"), ("cancelled", "cancelled")]

    user_id = models.BigIntegerField(db_index=True)
    username = models.CharField(max_length=150)
    # Money is a Decimal end to end, and a string in JSON ("12.50"): no float rounding.
    total = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(max_length=16, choices=STATUSES, default="pending")
    items = models.JSONField(default=list, blank=True)
    # The client's Idempotency-Key: a retried POST returns the first order, not a second.
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]
        # "My orders, newest first" is the common read.
        indexes = [models.Index(fields=["user_id", "-created"], name="dashboard_order_user_created")]
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="dashboard_order_idempotency_key",
            )
        ]

    def as_dict(self) -> dict:
        """The order in REST responses and in the new_order frame (the seed's fields, plus more)."""
        return {
            "id": self.pk,
            "user": self.username,
            "user_id": self.user_id,
            "total": f"{self.total:.2f}",
            "status": self.status,
            "items": self.items,
            "created": self.created.isoformat(),
        }


class Alert(models.Model):
    LEVELS = [("info", "info"), ("warning", "warning"), ("critical", "critical")]

    source = models.CharField(max_length=16)  # "alertmanager" or "staff"
    level = models.CharField(max_length=16, choices=LEVELS, default="info")
    status = models.CharField(max_length=16, default="firing")  # firing | resolved
    name = models.CharField(max_length=200, blank=True)  # Alertmanager's alertname
    message = models.TextField()
    # Alertmanager repeats every alert of a group in each notification; (fingerprint,
    # status, starts_at) identifies one state change, stored and pushed once.
    fingerprint = models.CharField(max_length=64, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    created_by = models.CharField(max_length=150, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint", "status", "starts_at"],
                condition=models.Q(source="alertmanager"),
                name="dashboard_alert_state_once",
            )
        ]

    def as_dict(self) -> dict:
        """The alert frame's fields (the seed's level and message, plus what an operator needs)."""
        return {
            "id": self.pk,
            "level": self.level,
            "message": self.message,
            "status": self.status,
            "name": self.name,
            "source": self.source,
            "created": self.created.isoformat(),
        }
