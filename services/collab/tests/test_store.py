"""Storage of documents: the log, compaction, and reload to the exact state."""

from __future__ import annotations

import pytest

from collab import store, ydoc
from collab.models import Update
from switchboard.tokens import Identity

pytestmark = pytest.mark.django_db

ALICE = Identity(1, "alice")


def edit(loaded: store.Loaded, doc_id: int, seq: int, position: int, value: str) -> int:
    before = loaded.doc.get_state()
    ydoc.apply_json_edit(loaded.text, str(loaded.text), "insert", position, value, None)
    store.append_update(doc_id, seq, loaded.doc.get_update(before), ALICE.id)
    return seq


def test_reload_replays_snapshot_and_log_exactly():
    doc = store.create_document(ALICE, "t", "start ")
    live = store.load(doc.pk)
    for i in range(1, 31):
        edit(live, doc.pk, i, 3 * i, f"<{i}>")
    assert store.text_of(doc.pk) == (str(live.text), 30)
    assert store.log_length(doc.pk) == 30


def test_compaction_folds_the_log_into_the_snapshot_without_changing_the_text():
    doc = store.create_document(ALICE, "t")
    live = store.load(doc.pk)
    for i in range(1, 51):
        edit(live, doc.pk, i, 0, str(i % 10))
    text_before = store.text_of(doc.pk)
    removed = store.compact(doc.pk, live.doc.get_update(), 50)
    assert removed == 50
    assert Update.objects.filter(document_id=doc.pk).count() == 0
    assert store.text_of(doc.pk) == text_before
    # Updates after the snapshot still apply on top of it.
    edit(live, doc.pk, 51, 0, "X")
    assert store.text_of(doc.pk) == ("X" + text_before[0], 51)


def test_a_seq_is_stored_once():
    from django.db import IntegrityError

    doc = store.create_document(ALICE, "t")
    live = store.load(doc.pk)
    edit(live, doc.pk, 1, 0, "a")
    with pytest.raises(IntegrityError):
        store.append_update(doc.pk, 1, b"\x00\x00", ALICE.id)


def test_roles_owner_edit_read_and_outsider():
    doc = store.create_document(ALICE, "t")
    store.share(doc, 2, "bob", "edit")
    store.share(doc, 3, "carol", "read")
    assert [store.role_of(doc, u) for u in (1, 2, 3, 4)] == ["owner", "edit", "read", None]
    assert [store.can_write(store.role_of(doc, u)) for u in (1, 2, 3, 4)] == [True, True, False, False]
    store.share(doc, 2, "bob", None)
    assert store.role_of(doc, 2) is None
    assert list(store.visible_to(3)) == [doc]
