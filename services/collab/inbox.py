"""collab's inbox worker: holds each open document in memory and decides every update.

Commands for one document arrive on one shard and are handled one at a time, so the
document's updates are applied, stored and broadcast in one order. For every change,
from a Yjs client (binary sync step 2 or update) or a JSON client (`edit`):

1. the user's role is checked (read-only users' changes are refused, not applied);
2. the change is applied to the live pycrdt document; what it actually changed (the
   transaction's update; nothing for a duplicate) is what gets stored;
3. that update is stored with the document's next seq, and only then
4. broadcast once to the document's group: as a Yjs update message (binary, for Yjs
   sockets) and as the seed's `edit` frames (text, for JSON sockets); the gateway sends
   each socket only its own kind (gw.accept `kinds`).

A worker that restarts reloads a document from its snapshot and log on first use and
sends sync step 1 to the document's group: every connected Yjs client answers with
what the server lacks, so a change the old worker took but never stored comes back.
The channel layer is at-most-once, so each direction has its repair:

* to the server: an update that starts past what the worker has of its client (one
  before it was lost) is answered with sync step 1 to its sender, whose step 2 fills
  the gap (ydoc.starts_after_a_gap);
* to the clients: every broadcast carries the document's seq (a stored update's), and
  the gateway closes a socket that sees a seq skipped with 4000, so it reconnects and
  syncs (a worker killed after storing an update and before broadcasting it).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from channels.db import database_sync_to_async
from pycrdt import Doc, Text, merge_updates

from collab import store, ydoc
from switchboard import failpoints, metrics, publish, routes
from switchboard.closecodes import CloseCode
from switchboard.config import env_int
from switchboard.errors import ErrorCode
from switchboard.inbox import InboxConsumer
from switchboard.presence import shared as presence
from switchboard.protocol import frame

log = logging.getLogger(__name__)


def doc_group(doc_id: int) -> str:
    """The document's group, from the route table (the gateway joins the same one)."""
    route = next(r for r in routes.load().websocket if r.name == "collab")
    return route.group.format(doc=str(doc_id))


def doc_id_of(cmd: dict) -> int | None:
    """The document id of the socket's path: an int the gateway parsed from its
    canonical ASCII spelling (routes.toml `params`), so one document has one group."""
    raw = cmd["params"].get("doc")
    return raw if type(raw) is int else None


def is_json(cmd: dict) -> bool:
    return cmd["params"].get("protocol") == "json"


class Live:
    """One document in memory: the pycrdt Doc, its stored seq, and who is on it."""

    def __init__(self, doc_id: int, loaded: store.Loaded):
        self.doc_id = doc_id
        self.doc: Doc = loaded.doc
        self.text: Text = loaded.text
        self.seq = loaded.last_seq
        self.log_length = loaded.log_length
        self.content = str(self.text)
        self.conns: set[str] = set()
        self.awareness: dict[int, ydoc.AwarenessEntry] = {}
        self.awareness_conn: dict[int, str] = {}  # client id -> the socket that sent it
        # Clocks of the states this server removed when their socket closed (see awareness()).
        self.awareness_removed: dict[int, int] = {}
        # JSON sockets' carets (conn -> position): awareness states too, counted with the
        # Yjs ones against COLLAB_AWARENESS_STATES (awareness_full()).
        self.cursors: dict[str, int] = {}
        self._updates: list[bytes] = []
        self._deltas: list[list[dict]] = []
        # Kept: pycrdt unsubscribes an observer whose subscription is collected.
        self._subs = (
            self.doc.observe(lambda event: self._updates.append(event.update)),
            self.text.observe(lambda event: self._deltas.append(event.delta)),
        )

    def awareness_full(self) -> bool:
        """Whether a new awareness state (a Yjs client id, a JSON socket's caret) would
        pass COLLAB_AWARENESS_STATES: each is relayed to every socket of the document."""
        return len(self.awareness) + len(self.cursors) >= env_int("COLLAB_AWARENESS_STATES")

    def take(self) -> tuple[bytes | None, list[list[dict]]]:
        """What the last change did: one update (None if nothing) and the text deltas."""
        updates, deltas = self._updates, self._deltas
        self._updates, self._deltas = [], []
        updates = [u for u in updates if u != ydoc.EMPTY_UPDATE]
        if not updates:
            return None, deltas
        return (updates[0] if len(updates) == 1 else merge_updates(*updates)), deltas

    def would_change(self, update: bytes) -> bool:
        """Whether applying `update` would change the document (on a copy). Used for
        read-only users, whose sync step 2 is usually empty but not byte-empty."""
        probe, text = ydoc.new_doc()
        probe.apply_update(self.doc.get_update())
        state, before = probe.get_state(), str(text)
        probe.apply_update(update)
        return probe.get_state() != state or str(text) != before


@database_sync_to_async
def _access(doc_id: int, user_id: int) -> tuple[bool, str | None, str]:
    doc = store.get_document(doc_id)
    if doc is None:
        return False, None, ""
    return True, store.role_of(doc, user_id), doc.title


@database_sync_to_async
def _role(doc_id: int, user_id: int) -> str | None:
    doc = store.get_document(doc_id)
    return store.role_of(doc, user_id) if doc else None


@database_sync_to_async
def _store(doc_id: int, seq: int, update: bytes, user_id: int, client_id: str | None) -> None:
    with metrics.timer(metrics.COLLAB_PERSIST_SECONDS):
        store.append_update(doc_id, seq, update, user_id, client_id)


class CollabInbox(InboxConsumer):
    service = "collab"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.docs: OrderedDict[int, Live] = OrderedDict()

    # ------------------------------------------------------------ documents ----
    async def live(self, doc_id: int) -> Live:
        live = self.docs.get(doc_id)
        if live is not None:
            self.docs.move_to_end(doc_id)
            return live
        live = Live(doc_id, await database_sync_to_async(store.load)(doc_id))
        self.docs[doc_id] = live
        self._evict()
        metrics.COLLAB_LIVE_DOCS.set(len(self.docs))
        # Connected Yjs clients answer with whatever this worker lacks (see module doc).
        await publish.send_to_group(doc_group(doc_id), data=ydoc.sync_step1(live.doc))
        # Another document's lane (ownership.py: documents of one shard run side by side)
        # may have evicted it meanwhile, before its first connection: it is in use.
        self.docs[doc_id] = live
        self.docs.move_to_end(doc_id)
        return live

    def _evict(self) -> None:
        limit = env_int("COLLAB_LIVE_DOCS")
        for doc_id in list(self.docs):
            if len(self.docs) <= limit:
                break
            if not self.docs[doc_id].conns:
                del self.docs[doc_id]

    def forget(self, doc_id: int) -> None:
        """Drop a document whose memory may hold a change the database does not."""
        self.docs.pop(doc_id, None)
        metrics.COLLAB_LIVE_DOCS.set(len(self.docs))

    # ----------------------------------------------------------- lifecycle ----
    async def gw_connect(self, cmd):
        conn, user = cmd["conn"], self.identity(cmd)
        doc_id = doc_id_of(cmd)
        exists, role, title = await _access(doc_id, user.id) if doc_id is not None else (False, None, "")
        if not exists:
            return await publish.reject(conn, CloseCode.NOT_FOUND)
        if role is None:
            return await publish.reject(conn, CloseCode.FORBIDDEN)
        live = await self.live(doc_id)
        live.conns.add(conn)
        group = doc_group(doc_id)
        if is_json(cmd):
            first = frame(
                "document_content",
                document=doc_id,
                title=title,
                content=live.content,
                seq=live.seq,
                role=role,
                users=await presence().users(group),
            )
            # The watermark drops edits already in `content` that the gateway held
            # while this socket was connecting: nothing twice, nothing missed.
            await publish.accept(conn, [first], watermarks={group: live.seq}, kinds=["text"])
        else:
            first = [ydoc.sync_step1(live.doc)]
            if live.awareness:
                # One tick above the known clocks: a client coming back after a
                # disconnect dropped these states locally without raising their clocks
                # (y-protocols), and would ignore them at the clocks it already saw.
                first.append(
                    ydoc.awareness_message(
                        [ydoc.AwarenessEntry(e.client_id, e.clock + 1, e.state) for e in live.awareness.values()]
                    )
                )
            # The watermark lets the gateway notice a broadcast this socket never got
            # (a seq skipped, e.g. a worker killed between storing and broadcasting)
            # and ask it to reconnect: its sync then brings what it lacks.
            await publish.accept(conn, first, watermarks={group: live.seq}, kinds=["bytes"])
        if not await presence().is_present(group, user.id, except_conn=conn):
            await publish.send_to_group(group, frame("user_joined", user=user.username), exclude_conn=conn)

    async def gw_disconnect(self, cmd):
        conn, user = cmd["conn"], self.identity(cmd)
        doc_id = doc_id_of(cmd)
        if doc_id is None:
            return
        group = doc_group(doc_id)
        live = self.docs.get(doc_id)
        if live is not None:
            live.conns.discard(conn)
            live.cursors.pop(conn, None)
            gone = [cid for cid, owner in live.awareness_conn.items() if owner == conn]
            if gone:
                # What y-websocket's server does: the socket's cursors leave with it.
                left = [
                    ydoc.AwarenessEntry(cid, live.awareness[cid].clock + 1, "null")
                    for cid in gone
                    if cid in live.awareness
                ]
                for entry in left:
                    live.awareness_removed[entry.client_id] = entry.clock
                if len(live.awareness_removed) > 10_000:
                    live.awareness_removed.clear()
                for cid in gone:
                    live.awareness.pop(cid, None)
                    live.awareness_conn.pop(cid, None)
                if left:
                    await publish.send_to_group(group, data=ydoc.awareness_message(left))
        if not await presence().is_present(group, user.id):
            await publish.send_to_group(group, frame("user_left", user=user.username))

    # ------------------------------------------------------------ Yjs (binary) ----
    async def receive_bytes(self, cmd):
        conn, doc_id = cmd["conn"], doc_id_of(cmd)
        if doc_id is None:
            return await publish.close(conn, CloseCode.NOT_FOUND)
        try:
            message = ydoc.parse(cmd["bytes"])
        except ydoc.ProtocolError as exc:
            metrics.COLLAB_UPDATES.labels("yjs", "invalid").inc()
            log.info("collab: closing a socket that sent a malformed message: %s", exc)
            return await publish.close(conn, CloseCode.BAD_REQUEST)
        try:
            live = await self.live(doc_id)
            asks = message.kind == ydoc.MSG_QUERY_AWARENESS or (
                message.kind == ydoc.MSG_SYNC and message.step == ydoc.SYNC_STEP1
            )
            # A reply that carries the document (or its cursors) to this socket: not to
            # a user whose role went while the frame was on its way (the revoke's close
            # is on the group's channel, this reply on the socket's).
            if asks and await _role(doc_id, self.identity(cmd).id) is None:
                return await publish.close(conn, CloseCode.FORBIDDEN)
            if message.kind == ydoc.MSG_SYNC and message.step == ydoc.SYNC_STEP1:
                await publish.send_to_conn(conn, data=ydoc.sync_step2(live.doc, message.payload))
            elif message.kind == ydoc.MSG_SYNC:
                await self.yjs_update(cmd, live, message.payload)
            elif message.kind == ydoc.MSG_AWARENESS:
                await self.awareness(cmd, live, message.payload, cmd["bytes"])
            elif message.kind == ydoc.MSG_QUERY_AWARENESS and live.awareness:
                await publish.send_to_conn(conn, data=ydoc.awareness_message(list(live.awareness.values())))
        except ydoc.ProtocolError as exc:
            metrics.COLLAB_UPDATES.labels("yjs", "invalid").inc()
            log.info("collab: closing a socket that sent a malformed message: %s", exc)
            await publish.close(conn, CloseCode.BAD_REQUEST)
        except Exception:
            # A text error frame would break a Yjs client; close instead: it
            # reconnects and resyncs, which resends anything not stored.
            log.exception("collab: update failed on document %s", doc_id)
            metrics.COLLAB_UPDATES.labels("yjs", "error").inc()
            self.forget(doc_id)
            await publish.close(conn, CloseCode.INTERNAL_ERROR)

    async def yjs_update(self, cmd, live: Live, update: bytes):
        user = self.identity(cmd)
        if update == ydoc.EMPTY_UPDATE:
            return
        role = await _role(live.doc_id, user.id)
        if role is None:
            return await publish.close(cmd["conn"], CloseCode.FORBIDDEN)
        if not store.can_write(role):
            if await self._check(live, update):
                metrics.COLLAB_UPDATES.labels("yjs", "refused").inc()
                await publish.send_to_conn(cmd["conn"], data=ydoc.permission_denied("read-only: change not applied"))
            return
        state = live.doc.get_state()
        behind = ydoc.starts_after_a_gap(state, update)
        try:
            live.doc.apply_update(update)
        except ValueError as exc:
            live.take()
            if live.doc.get_state() != state:
                # Refused after integrating part of it: reload from the store (only
                # updates that applied are in it). Not for the usual refusal, which
                # fails decoding first: a reload makes every editor resync, and a
                # client sending garbage must not be able to cause that at will.
                self.forget(live.doc_id)
            raise ydoc.ProtocolError(str(exc)) from None
        await self.commit(cmd, live, "yjs")
        if behind:
            # An earlier update of this client never reached this worker (lost in a
            # Redis restart, or taken by a worker that died): this one waits in the
            # document, unseen, until the gap is filled. Yjs has no ack, so nothing
            # else would fill it; the client's step 2 answer does.
            metrics.COLLAB_UPDATES.labels("yjs", "gap").inc()
            await publish.send_to_conn(cmd["conn"], data=ydoc.sync_step1(live.doc))

    async def _check(self, live: Live, update: bytes) -> bool:
        try:
            return live.would_change(update)
        except ValueError as exc:
            raise ydoc.ProtocolError(str(exc)) from None

    async def awareness(self, cmd, live: Live, payload: bytes, raw: bytes):
        entries = ydoc.read_awareness(payload)
        rewritten = False
        news = False
        max_bytes = env_int("COLLAB_AWARENESS_STATE_BYTES")
        dropped: set[int] = set()  # indexes of entries neither kept nor relayed
        for n, entry in enumerate(entries):
            if entry.state != "null" and len(entry.state.encode()) > max_bytes:
                # Too big to relay to every editor: dropped, never answered in text (a
                # Yjs socket cannot read it). Others keep the sender's last state.
                dropped.add(n)
                metrics.COLLAB_AWARENESS_DROPPED.labels("yjs", "bytes").inc()
                continue
            if entry.state != "null" and entry.client_id not in live.awareness and live.awareness_full():
                # A document is not a place for thousands of cursors: a new client id
                # past COLLAB_AWARENESS_STATES is dropped, and stays so until one leaves.
                dropped.add(n)
                metrics.COLLAB_AWARENESS_DROPPED.labels("yjs", "states").inc()
                continue
            removed = live.awareness_removed.get(entry.client_id) if entry.state != "null" else None
            if removed is not None:
                del live.awareness_removed[entry.client_id]
            if removed is not None and entry.clock <= removed:
                # A client back after a reconnect resends its state with the clock it
                # had, which is below the removal we broadcast when its socket closed:
                # others would ignore it (y-protocols keeps the higher clock) and its
                # cursor would stay hidden until its next renewals. Lift the clock above
                # the removal; the client adopts it for its own state too.
                entry = entries[n] = ydoc.AwarenessEntry(entry.client_id, removed + 1, entry.state)
                rewritten = True
            known = live.awareness.get(entry.client_id)
            if known is not None and (
                entry.clock < known.clock or (entry.clock == known.clock and entry.state != "null")
            ):
                continue  # old news: y-websocket clients echo every change they apply
            news = True
            if entry.state == "null":
                # y-websocket's disconnect() says goodbye itself; remember the clock
                # so its return can be lifted above it (see above).
                live.awareness_removed[entry.client_id] = entry.clock
                live.awareness.pop(entry.client_id, None)
                live.awareness_conn.pop(entry.client_id, None)
            else:
                if known is None:
                    # The socket that introduced a client id owns it (y-websocket's
                    # server does the same); echoes from others do not move it.
                    live.awareness_conn[entry.client_id] = cmd["conn"]
                live.awareness[entry.client_id] = entry
        if not news:
            return  # echoes only: relaying them would cost every socket a frame per socket
        if dropped:
            entries = [e for n, e in enumerate(entries) if n not in dropped]
        # To the sender too: y-websocket counts its own echo as a sign of life.
        data = ydoc.awareness_message(entries) if rewritten or dropped else raw
        await publish.send_to_group(doc_group(live.doc_id), data=data)

    # ------------------------------------------------------------- JSON (seed) ----
    async def frame_edit(self, cmd, data):
        conn, user, doc_id = cmd["conn"], self.identity(cmd), doc_id_of(cmd)
        live = await self.live(doc_id)
        role = await _role(doc_id, user.id)
        if not store.can_write(role):
            metrics.COLLAB_UPDATES.labels("json", "refused").inc()
            return await publish.send_error(conn, ErrorCode.READ_ONLY, "you may read this document but not change it")
        client_id = data.get("client_id")
        if client_id:
            seq = await database_sync_to_async(store.seq_of_client_edit)(doc_id, user.id, client_id)
            if seq is not None:
                # A resend after a lost ack: it is in the document (and in the
                # document_content the client got on reconnect). Acknowledge it again.
                metrics.COLLAB_UPDATES.labels("json", "duplicate").inc()
                return await publish.send_to_conn(
                    conn, frame("ack", seq=seq, applied=True, duplicate=True, edits=[], client_id=client_id)
                )
        try:
            with live.doc.transaction():
                ydoc.apply_json_edit(
                    live.text, live.content, data["action"], data["position"], data.get("text", ""), data.get("length")
                )
            seq, edits = await self.commit(cmd, live, "json", client_id)
        except Exception:
            self.forget(doc_id)
            raise
        ack = {"seq": seq, "applied": bool(edits), "edits": edits}
        if data.get("client_id"):
            ack["client_id"] = data["client_id"]
        await publish.send_to_conn(conn, frame("ack", **ack))

    async def frame_cursor_move(self, cmd, data):
        conn, user, doc_id = cmd["conn"], self.identity(cmd), doc_id_of(cmd)
        live = await self.live(doc_id)
        if conn not in live.cursors and live.awareness_full():
            # Counted with the Yjs states: the caret of a JSON socket is shown to
            # everyone too. A JSON client can read why; its edits still go through.
            metrics.COLLAB_AWARENESS_DROPPED.labels("json", "states").inc()
            limit = env_int("COLLAB_AWARENESS_STATES")
            return await publish.send_error(
                conn,
                ErrorCode.AWARENESS_LIMIT,
                f"this document already shows {limit} cursors (COLLAB_AWARENESS_STATES): yours is not shown, "
                "edits still work; it is shown once someone leaves",
            )
        live.cursors[conn] = data["position"]
        await publish.send_to_group(
            doc_group(doc_id),
            frame("cursor", user=user.username, position=data["position"]),
            exclude_conn=cmd["conn"],
        )

    # ---------------------------------------------------------------- commit ----
    async def commit(self, cmd, live: Live, source: str, client_id: str | None = None) -> tuple[int, list[dict]]:
        """Store what the last change did, then broadcast it; returns (seq, edits)."""
        update, deltas = live.take()
        if update is None:
            metrics.COLLAB_UPDATES.labels(source, "empty").inc()
            return live.seq, []
        seq = live.seq + 1
        await _store(live.doc_id, seq, update, cmd["user"]["id"], client_id)
        live.seq = seq
        live.log_length += 1
        edits: list[dict] = []
        current = live.content
        for delta in deltas:
            more, current = ydoc.delta_to_edits(current, delta)
            edits += more
        live.content = str(live.text)
        metrics.COLLAB_UPDATES.labels(source, "stored").inc()

        group, conn, user = doc_group(live.doc_id), cmd["conn"], cmd["user"]["username"]
        # One seq, several frames: the Yjs update is part 0, the JSON edits parts 1..n,
        # each carrying the count, so the gateway can tell a skipped seq from the rest
        # of this one, and a seq whose later parts never came (this worker killed
        # between two publishes) from a whole one.
        parts = 1 + len(edits)
        await publish.send_to_group(
            group,
            data=ydoc.update_message(update),
            seq=seq,
            parts=parts,
            exclude_conn=conn if source == "yjs" else None,
        )
        if edits:
            failpoints.hit("collab.between_parts")  # the fault campaign's kill between parts
        for part, edit in enumerate(edits, 1):
            await publish.send_to_group(
                group,
                frame("edit", user=user, seq=seq, **edit),
                seq=seq,
                part=part,
                parts=parts,
                exclude_conn=conn if source == "json" else None,
            )
        if live.log_length >= env_int("COLLAB_COMPACT_UPDATES"):
            await self.compact(live)
        return seq, edits

    async def compact(self, live: Live) -> None:
        start = time.perf_counter()
        removed = await database_sync_to_async(store.compact)(live.doc_id, live.doc.get_update(), live.seq)
        live.log_length = 0
        metrics.COLLAB_COMPACTIONS.inc()
        log.info(
            "collab: document %s compacted at seq %s (%d updates folded, %.1f ms)",
            live.doc_id,
            live.seq,
            removed,
            (time.perf_counter() - start) * 1000,
        )
