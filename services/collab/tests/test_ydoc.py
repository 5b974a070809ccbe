"""The Yjs wire codec and the JSON<->Y.Text conversions, against pycrdt documents."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Text

from collab import ydoc


def test_parse_sync_and_awareness_messages_and_refuse_truncated_ones():
    doc, text = ydoc.new_doc()
    text += "hi"
    step1 = ydoc.parse(ydoc.sync_step1(doc))
    assert (step1.kind, step1.step, step1.payload) == (ydoc.MSG_SYNC, ydoc.SYNC_STEP1, doc.get_state())
    update = ydoc.parse(ydoc.update_message(doc.get_update()))
    assert (update.step, update.payload) == (ydoc.SYNC_UPDATE, doc.get_update())

    entries = [ydoc.AwarenessEntry(123456789, 3, '{"user":{"name":"alice"}}'), ydoc.AwarenessEntry(7, 1, "null")]
    message = ydoc.parse(ydoc.awareness_message(entries))
    assert message.kind == ydoc.MSG_AWARENESS
    assert ydoc.read_awareness(message.payload) == entries

    whole = ydoc.update_message(doc.get_update())
    for broken in (b"", whole[:-1], b"\x00\x09\x01", b"\x07", b"\x00\x02\x85"):
        with pytest.raises(ydoc.ProtocolError):
            ydoc.parse(broken)
    # An awareness body that claims more entries than it holds.
    with pytest.raises(ydoc.ProtocolError):
        ydoc.read_awareness(b"\x02\x05\x01\x02{}")


def test_step2_brings_a_second_document_level_with_the_first():
    a, ta = ydoc.new_doc()
    ta += "shared text"
    b = Doc()
    tb = b.get(ydoc.TEXT_NAME, type=Text)
    reply = ydoc.parse(ydoc.sync_step2(a, b.get_state()))
    b.apply_update(reply.payload)
    assert str(tb) == "shared text"


def test_json_edits_count_utf16_units_like_browsers():
    doc, text = ydoc.new_doc()
    ydoc.apply_json_edit(text, "", "insert", 0, "ab😀cd", None)
    # "ab😀" is 4 UTF-16 units: position 4 is right after the emoji.
    ydoc.apply_json_edit(text, str(text), "insert", 4, "Z", None)
    assert str(text) == "ab😀Zcd"
    # A position inside the surrogate pair moves back to its start, never splits it.
    ydoc.apply_json_edit(text, str(text), "insert", 3, "-", None)
    assert str(text) == "ab-😀Zcd"
    ydoc.apply_json_edit(text, str(text), "delete", 3, "😀", None)
    assert str(text) == "ab-Zcd"
    ydoc.apply_json_edit(text, str(text), "delete", 4, "", 100)  # clamped to the end
    assert str(text) == "ab-Z"
    ydoc.apply_json_edit(text, str(text), "insert", 999, "!", None)  # clamped too
    assert str(text) == "ab-Z!"


def test_a_delta_becomes_edits_that_replay_to_the_same_text():
    doc, text = ydoc.new_doc()
    text += "héllo 😀 world"
    deltas = []
    sub = text.observe(lambda e: deltas.append(e.delta))  # noqa: F841 (kept alive)
    before = str(text)
    with doc.transaction():
        del text[0:1]
        text.insert(len("éllo ".encode()), "big ")
        text += "!"
    edits, after = ydoc.delta_to_edits(before, deltas[-1])
    assert after == str(text) == "éllo big 😀 world!"
    replay = before
    for e in edits:
        units = replay.encode("utf-16-le")
        p = 2 * e["position"]
        if e["action"] == "insert":
            units = units[:p] + e["text"].encode("utf-16-le") + units[p:]
        else:
            units = units[:p] + units[p + 2 * e["length"] :]
        replay = units.decode("utf-16-le")
    assert replay == str(text)


@pytest.mark.parametrize("state", ["{", "not json", "NaN", ""])
def test_an_awareness_state_that_is_not_json_is_refused(state):
    # Relayed, it would make every editor's y-protocols throw in JSON.parse.
    message = ydoc.parse(ydoc.awareness_message([ydoc.AwarenessEntry(1, 1, state)]))
    with pytest.raises(ydoc.ProtocolError):
        ydoc.read_awareness(message.payload)


def test_an_update_that_starts_past_what_a_document_has_of_its_client_is_noticed():
    source, text = ydoc.new_doc()
    updates = []
    sub = source.observe(lambda event: updates.append(event.update))  # noqa: F841 (kept alive)
    for piece in ("a", "b", "c"):
        text += piece
    server, _ = ydoc.new_doc()
    assert not ydoc.starts_after_a_gap(server.get_state(), updates[0])
    server.apply_update(updates[0])
    assert not ydoc.starts_after_a_gap(server.get_state(), updates[1])
    assert ydoc.starts_after_a_gap(server.get_state(), updates[2])  # updates[1] never came
    assert not ydoc.starts_after_a_gap(server.get_state(), ydoc.EMPTY_UPDATE)
    assert not ydoc.starts_after_a_gap(server.get_state(), b"\x05")  # truncated: apply_update's to refuse
    assert ydoc.state_vector(source.get_state()) == {source.client_id: 3}
