"""The one table every service's database has: the fence of its inbox shards.

A new owner of a shard writes its token here before it takes a command; a command's
effects commit only while the token they were taken under is still the newest
(switchboard.ownership.check_fence). See docs/operations.md, "Shard ownership".
"""

from django.db import models


class ShardFence(models.Model):
    inbox = models.CharField(max_length=64)
    shard = models.IntegerField()
    token = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["inbox", "shard"], name="switchboard_shardfence_unique")]
