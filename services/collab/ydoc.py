"""The Yjs wire protocol (y-protocols' sync, awareness and auth messages) and the
text conversions between Y.Text and the seed's JSON edits.

Message layout (lib0 encoding, as y-websocket sends it): a varuint message type,
then for sync (0) a varuint step (0 step 1 / 1 step 2 / 2 update) and a varuint8array;
for awareness (1) a varuint8array holding [count, (client id, clock, JSON state)*];
for auth (2) a varuint (0 = permission denied) and a varstring reason; query
awareness (3) has no body. pycrdt builds the sync messages; the reader here checks
every length against the buffer, because these bytes come straight from clients.

Offsets: pycrdt's Text counts UTF-8 bytes, Yjs and browsers count UTF-16 code units.
The JSON protocol speaks UTF-16, like the browser's textarea.selectionStart.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from pycrdt import Doc, Text, create_sync_message, create_update_message, write_var_uint

TEXT_NAME = "content"  # the Y.Text every client edits

MSG_SYNC = 0
MSG_AWARENESS = 1
MSG_AUTH = 2
MSG_QUERY_AWARENESS = 3
SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2
EMPTY_UPDATE = b"\x00\x00"  # an update with no structs and no deletions


class ProtocolError(ValueError):
    """Bytes that are not a well-formed Yjs message."""


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def var_uint(self) -> int:
        value, shift = 0, 0
        while True:
            if self.pos >= len(self.data):
                raise ProtocolError("truncated varuint")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise ProtocolError("varuint too long")

    def var_bytes(self) -> bytes:
        length = self.var_uint()
        end = self.pos + length
        if end > len(self.data):
            raise ProtocolError("truncated byte array")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def var_string(self) -> str:
        try:
            return self.var_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("string is not UTF-8") from None


def var_bytes(data: bytes) -> bytes:
    return write_var_uint(len(data)) + data


@dataclass(frozen=True)
class Message:
    kind: int  # MSG_*
    step: int = -1  # SYNC_* for sync messages
    payload: bytes = b""  # state vector, update, or awareness update


def parse(data: bytes) -> Message:
    r = Reader(data)
    kind = r.var_uint()
    if kind == MSG_SYNC:
        step = r.var_uint()
        if step not in (SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE):
            raise ProtocolError(f"unknown sync step {step}")
        return Message(kind, step, r.var_bytes())
    if kind == MSG_AWARENESS:
        return Message(kind, payload=r.var_bytes())
    if kind in (MSG_AUTH, MSG_QUERY_AWARENESS):
        return Message(kind)
    raise ProtocolError(f"unknown message type {kind}")


@dataclass(frozen=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: str  # JSON text; "null" means the client left


def read_awareness(payload: bytes) -> list[AwarenessEntry]:
    r = Reader(payload)
    count = r.var_uint()
    if count > 10_000:
        raise ProtocolError("too many awareness entries")
    entries = [AwarenessEntry(r.var_uint(), r.var_uint(), r.var_string()) for _ in range(count)]
    for entry in entries:
        # Relayed as is to every editor, whose y-protocols JSON.parses it: a state that
        # is not JSON would throw in each of them, so it stops here.
        try:
            orjson.loads(entry.state)
        except orjson.JSONDecodeError:
            raise ProtocolError("awareness state is not JSON") from None
    return entries


def awareness_message(entries: list[AwarenessEntry]) -> bytes:
    body = write_var_uint(len(entries)) + b"".join(
        write_var_uint(e.client_id) + write_var_uint(e.clock) + var_bytes(e.state.encode()) for e in entries
    )
    return bytes([MSG_AWARENESS]) + var_bytes(body)


def permission_denied(reason: str) -> bytes:
    """y-protocols/auth: the client logs it (y-websocket's permissionDeniedHandler)."""
    return bytes([MSG_AUTH, 0]) + var_bytes(reason.encode())


def sync_step1(doc: Doc) -> bytes:
    return create_sync_message(doc)


def sync_step2(doc: Doc, state_vector: bytes) -> bytes:
    """The reply to a client's step 1: what it lacks, given its state vector."""
    try:
        update = doc.get_update(state_vector)
    except ValueError as exc:  # a state vector that does not decode
        raise ProtocolError(str(exc)) from None
    return bytes([MSG_SYNC, SYNC_STEP2]) + var_bytes(update)


def update_message(update: bytes) -> bytes:
    return create_update_message(update)


def state_vector(encoded: bytes) -> dict[int, int]:
    """{client id: next clock} of an encoded state vector (Doc.get_state())."""
    r = Reader(encoded)
    return {r.var_uint(): r.var_uint() for _ in range(r.var_uint())}


def starts_after_a_gap(state: bytes, update: bytes) -> bool:
    """Whether `update`'s first client's structs start past what a document whose
    encoded state vector is `state` (Doc.get_state()) has of that client: an earlier
    update of the same client never arrived here.

    Yjs keeps such an update pending (it shows nowhere) and every later update of that
    client waits behind it, so the gap must be filled: the caller asks the sender for
    what this side lacks (sync step 1). An update v1 begins [client count, then per
    client: struct count, client id, first clock]; a client's own change has one client,
    so the first one is the one to check (a sync step 2 may hold several: the first is
    enough to notice most gaps, and a later sync fills the rest)."""
    r = Reader(update)
    try:
        if r.var_uint() == 0:
            return False
        r.var_uint()  # struct count
        client, clock = r.var_uint(), r.var_uint()
    except ProtocolError:
        return False  # apply_update decides whether it is malformed
    return state_vector(state).get(client, 0) < clock


def new_doc() -> tuple[Doc, Text]:
    doc = Doc()
    return doc, doc.get(TEXT_NAME, type=Text)


# ------------------------------------------------------------ text offsets ----
def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def utf16_to_byte_offset(text: str, position: int) -> int:
    """The UTF-8 byte offset of UTF-16 `position` in `text`, clamped to the text and
    moved back off the middle of a surrogate pair."""
    units = text.encode("utf-16-le")[: 2 * max(0, position)]
    prefix = units.decode("utf-16-le", errors="ignore")  # drops half a surrogate pair
    return len(prefix.encode())


def byte_to_utf16_offset(text_bytes: bytes, offset: int) -> int:
    return utf16_len(text_bytes[:offset].decode("utf-8", errors="ignore"))


def delta_to_edits(before: str, delta: list[dict]) -> tuple[list[dict], str]:
    """A Y.Text delta (pycrdt counts UTF-8 bytes) as the seed's edit frames, in UTF-16
    positions, each relative to the text after the previous one; and the text after."""
    current = before.encode()
    pos = 0
    edits: list[dict] = []
    for op in delta:
        if "retain" in op:
            pos += int(op["retain"])
        elif "insert" in op:
            inserted = op["insert"]
            if not isinstance(inserted, str):
                continue  # embeds are not text; the JSON protocol has no shape for them
            edits.append({"action": "insert", "position": byte_to_utf16_offset(current, pos), "text": inserted})
            raw = inserted.encode()
            current = current[:pos] + raw + current[pos:]
            pos += len(raw)
        elif "delete" in op:
            n = int(op["delete"])
            removed = current[pos : pos + n].decode("utf-8", errors="ignore")
            edits.append(
                {
                    "action": "delete",
                    "position": byte_to_utf16_offset(current, pos),
                    "text": removed,
                    "length": utf16_len(removed),
                }
            )
            current = current[:pos] + current[pos + n :]
    return edits, current.decode("utf-8", errors="replace")


def apply_json_edit(text: Text, current: str, action: str, position: int, value: str, length: int | None) -> None:
    """Apply one JSON edit (UTF-16 positions, clamped to the text) to the shared Y.Text."""
    start = utf16_to_byte_offset(current, position)
    if action == "insert":
        if value:
            text.insert(start, value)
        return
    count = utf16_len(value) if length is None else length
    end = utf16_to_byte_offset(current, position + count)
    if end > start:
        del text[start:end]
