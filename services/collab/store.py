"""collab's writes and reads, synchronous, in one place (the inbox worker and the REST
API both call these).

The rules that keep a document exact across restarts:
* an update is stored (append_update) before anyone is sent it, with the document's
  next seq in the same transaction; (document, seq) is unique, so two writers cannot
  both think they stored seq n;
* compaction replaces the snapshot and deletes the folded updates in one transaction,
  so a reader sees either the old snapshot with its log or the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from pycrdt import Doc, Text

from collab import ydoc
from collab.models import Access, ClientEdit, Document, Update
from switchboard import ownership
from switchboard.tokens import Identity

OWNER = "owner"
# How long a JSON client's edit id is remembered: far longer than any reconnect.
CLIENT_EDIT_TTL = timedelta(days=1)


def get_document(doc_id: int | str) -> Document | None:
    try:
        return Document.objects.filter(pk=int(doc_id)).first()
    except (TypeError, ValueError):
        return None


def role_of(document: Document, user_id: int) -> str | None:
    """owner, edit, read, or None (no access)."""
    if document.owner_id == user_id:
        return OWNER
    return Access.objects.filter(document=document, user_id=user_id).values_list("role", flat=True).first()


def can_write(role: str | None) -> bool:
    return role in (OWNER, Access.EDIT)


def visible_to(user_id: int):
    return Document.objects.filter(Q(owner_id=user_id) | Q(access__user_id=user_id)).distinct()


def create_document(owner: Identity, title: str, content: str = "") -> Document:
    doc, text = ydoc.new_doc()
    if content:
        text += content
    return Document.objects.create(
        title=title, owner_id=owner.id, owner_name=owner.username, snapshot=doc.get_update(), snapshot_seq=0
    )


def share(document: Document, user_id: int, username: str, role: str | None) -> None:
    """Give `role` (edit, read) to a user, or take access away (None)."""
    if role is None:
        Access.objects.filter(document=document, user_id=user_id).delete()
        return
    Access.objects.update_or_create(document=document, user_id=user_id, defaults={"username": username, "role": role})


@dataclass
class Loaded:
    doc: Doc
    text: Text
    last_seq: int
    log_length: int  # updates stored after the snapshot


def load(doc_id: int) -> Loaded:
    """The document's state from its snapshot and log, read in one transaction."""
    doc, text = ydoc.new_doc()
    with transaction.atomic():
        row = Document.objects.values("snapshot", "snapshot_seq", "last_seq").get(pk=doc_id)
        updates = list(
            Update.objects.filter(document_id=doc_id, seq__gt=row["snapshot_seq"])
            .order_by("seq")
            .values_list("data", flat=True)
        )
    snapshot = bytes(row["snapshot"])
    if snapshot:
        doc.apply_update(snapshot)
    for data in updates:
        doc.apply_update(bytes(data))
    return Loaded(doc, text, row["last_seq"], len(updates))


def text_of(doc_id: int) -> tuple[str, int]:
    loaded = load(doc_id)
    return str(loaded.text), loaded.last_seq


def append_update(doc_id: int, seq: int, data: bytes, user_id: int, client_id: str | None = None) -> None:
    """Store update `seq` (the caller's last_seq + 1), with the JSON client's edit id if
    any; IntegrityError if the seq is taken."""
    with transaction.atomic():
        ownership.check_fence()  # a worker that lost the document's shard stores nothing
        Update.objects.create(document_id=doc_id, seq=seq, data=data, user_id=user_id)
        Document.objects.filter(pk=doc_id).update(last_seq=seq)
        if client_id:
            ClientEdit.objects.create(document_id=doc_id, user_id=user_id, client_id=client_id, seq=seq)


def seq_of_client_edit(doc_id: int, user_id: int, client_id: str) -> int | None:
    """The seq an edit with this id was stored as, if it was."""
    return (
        ClientEdit.objects.filter(document_id=doc_id, user_id=user_id, client_id=client_id)
        .values_list("seq", flat=True)
        .first()
    )


def compact(doc_id: int, state: bytes, upto_seq: int) -> int:
    """Fold the log up to `upto_seq` into the snapshot `state` (the document's whole
    state at that seq); returns how many updates were removed."""
    with transaction.atomic():
        ownership.check_fence()
        Document.objects.filter(pk=doc_id).update(snapshot=state, snapshot_seq=upto_seq)
        removed, _ = Update.objects.filter(document_id=doc_id, seq__lte=upto_seq).delete()
        ClientEdit.objects.filter(document_id=doc_id, created_at__lt=timezone.now() - CLIENT_EDIT_TTL).delete()
    return removed


def log_length(doc_id: int) -> int:
    snapshot_seq = Document.objects.values_list("snapshot_seq", flat=True).get(pk=doc_id)
    return Update.objects.filter(document_id=doc_id, seq__gt=snapshot_seq).count()
