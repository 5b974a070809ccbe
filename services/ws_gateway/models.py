"""ws-gateway's own tables: the shop users and the shop's API keys (issue 18).

A shop user is known by the shop's user id (a shop token's `sub`, a string); ShopUser
maps it to a local User once, so every service uses that user's id like any other.
"""

from django.conf import settings
from django.db import models


class ShopUser(models.Model):
    sub = models.CharField(max_length=255, unique=True)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shop")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)


class ApiKey(models.Model):
    """An API key of the shop's back end (switchboard/apikeys.py): its sha256 only, never
    the key. Revoked keys stay (revoked_at set) so the list shows what was used when."""

    key_id = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    scopes = models.JSONField(default=list)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def as_dict(self) -> dict:
        return {
            "id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_by": self.created_by,
            "created": self.created_at.isoformat(),
            "revoked": self.revoked_at.isoformat() if self.revoked_at else None,
        }
