"""collab's data: documents, who may use them, and each document's CRDT update log.

A document's state is its snapshot (a Yjs update encoding the whole state, folded in
by compaction) followed by the log's updates with seq above `snapshot_seq`, applied
in seq order. Users live in ws-gateway's database: access rows keep the user's id
(what tokens carry) and name (what people type when sharing).
"""

from django.db import models


class Document(models.Model):
    title = models.CharField(max_length=200)
    owner_id = models.BigIntegerField()
    owner_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The whole state up to snapshot_seq, as one Yjs update (v1 encoding).
    snapshot = models.BinaryField(default=b"")
    snapshot_seq = models.BigIntegerField(default=0)
    # The seq of the newest stored update; the next one gets last_seq + 1.
    last_seq = models.BigIntegerField(default=0)

    def __str__(self):
        return self.title


class Access(models.Model):
    """A user other than the owner who may edit or only read the document."""

    EDIT = "edit"
    READ = "read"
    ROLES = [(EDIT, "edit"), (READ, "read")]

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="access")
    user_id = models.BigIntegerField()
    username = models.CharField(max_length=150)
    role = models.CharField(max_length=8, choices=ROLES)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["document", "user_id"], name="collab_access_user")]


class Update(models.Model):
    """One stored Yjs update; stored before anyone is sent it."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="updates")
    seq = models.BigIntegerField()
    data = models.BinaryField()
    user_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["document", "seq"]
        constraints = [models.UniqueConstraint(fields=["document", "seq"], name="collab_update_seq")]


class ClientEdit(models.Model):
    """A JSON client's edit id, stored with its update: a resend after a lost ack is
    acknowledged again, not applied twice. Kept apart from the log, which compaction
    empties; rows older than a day are dropped at compaction."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="client_edits")
    user_id = models.BigIntegerField()
    client_id = models.CharField(max_length=64)
    seq = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["document", "user_id", "client_id"], name="collab_client_edit_id")
        ]
