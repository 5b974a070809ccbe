"""The gateway consumer: one instance per WebSocket, for every /ws/ route.

Lifecycle of a socket (docs in README "The path of a message"):

1. connect: match the route (routes.toml), check Origin (refused before the
   handshake), complete the handshake, authenticate (4401), check staff (4403), type
   the URL's parameters (4400), count the socket against its user's and IP's caps
   (4429), join the
   route's group and presence, then ask the owning service's inbox with gw.connect.
   Until the service answers gw.accept the socket is "connecting": client frames and
   group frames wait in small bounded buffers; no answer within
   CONNECT_TIMEOUT_SECONDS closes with 1013.
2. open: each client frame is size-checked (1009), rate-limited (error rate_limited;
   a binary-only socket, which cannot read error frames, is closed with 4029),
   validated against the route's schema (error frame, socket stays open) and relayed
   to the inbox shard of its key. Frames from services are forwarded as the same text.
3. close: presence and groups are dropped and the service gets gw.disconnect.

The consumer knows routes, not business: everything a route means is in its service.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial

from channels.consumer import AsyncConsumer
from channels.exceptions import ChannelFull, StopConsumer
from channels.layers import get_channel_layer
from daphne.server import Server as DaphneServer

from switchboard import metrics, routes
from switchboard.closecodes import REASONS, CloseCode
from switchboard.config import env_float, env_int
from switchboard.errors import ErrorCode
from switchboard.presence import ALL, Member, route_topic
from switchboard.protocol import FrameError, GwReceive, Ping, error_frame, frame, parse_client_frame
from switchboard.ratelimit import LocalTokenBucket, connection_rate
from switchboard.routes import ParamError
from ws_gateway import clientip, connections, daphne_send_bound
from ws_gateway.layers import decoded, prepared
from ws_gateway.socket_queue import SocketQueue
from ws_gateway.wsauth import origin_allowed, query_pairs, read_handshake

log = logging.getLogger(__name__)

# Frames a client may send before its service has accepted; more is a sign of a
# client that does not wait for the first frames.
PENDING_CLIENT_FRAMES = 64
# Group frames held while connecting; a busy room fills this in well under the
# connect timeout only if the service is far behind, and then 1013 is the right answer.
PENDING_GROUP_FRAMES = 2000
# gw.accept `kinds` of a socket that takes binary frames only (collab's Yjs clients).
BINARY_ONLY = frozenset(("bytes",))
# outgoing()'s answer for a group frame whose seq skips one this socket never got.
GAP = ("gap", "")
# The part of an accept watermark: every part of that seq is in the history sent.
ALL_PARTS = float("inf")


_pending_counts: dict = {}


def _add_pending_counts() -> None:
    for counter, n in _pending_counts.items():
        counter.inc(n)
    _pending_counts.clear()


def count_soon(counter) -> None:
    """counter.inc(), added up over one broadcast: a Prometheus inc takes a lock, and
    one per socket per frame was 6 % of the broadcast loop
    (bench/profiles/gateway-fanout1000-direct.txt: MutexValue.inc, Counter.inc)."""
    if not _pending_counts:
        asyncio.get_running_loop().call_soon(_add_pending_counts)
    _pending_counts[counter] = _pending_counts.get(counter, 0) + 1


class GatewayConsumer(AsyncConsumer):
    """Terminates one WebSocket and relays it to its owning service."""

    state = "new"  # new -> connecting -> open -> closed
    closing = False
    _frames_out = None  # this route's "out" counter, looked up once per socket
    _queue: SocketQueue | None = None
    _protocol = None  # daphne's protocol of this socket, when served by daphne

    async def __call__(self, scope, receive, send):
        """AsyncConsumer's loop, with one queue and one task step per message.

        Channels waits on the client and the channel layer with two fresh tasks and an
        asyncio.wait per message: at 1,000 members that bookkeeping was a third of the
        gateway's CPU per broadcast (docs/performance.md). With ws-gateway's layer
        (layers.py) the channel's own queue is read directly and client events are put
        in it too, so both keep their order in one FIFO. Other layers (tests): as before.
        """
        layer = get_channel_layer(self.channel_layer_alias)
        if not hasattr(layer, "queue_of"):
            return await super().__call__(scope, receive, send)
        self.scope = scope
        self.channel_layer = layer
        self.base_send = send
        inbox = getattr(receive, "__self__", None)
        pump_task = None
        if type(inbox) is SocketQueue:
            # daphne's input queue for this socket (daphne_memory.py): the channel's
            # messages are filed in it too, so there is nothing to forward.
            self.channel_name = await layer.new_channel_on(inbox)
            queue = inbox
            if isinstance(send, partial) and isinstance(getattr(send.func, "__self__", None), DaphneServer):
                self._protocol = send.args[0]
        else:
            self.channel_name = await layer.new_channel()
            queue = layer.queue_of(self.channel_name)

            async def pump():
                # Nothing follows a disconnect (ASGI); uvicorn answers every later receive()
                # at once, so forwarding on would spin without ever yielding the loop.
                while True:
                    event = await receive()
                    queue.put_nowait(event)
                    if event["type"] == "websocket.disconnect":
                        return

            pump_task = asyncio.ensure_future(pump())
        self._queue = queue
        deserialize = layer.deserialize
        try:
            while True:
                item = await queue.get()
                # Client events are dicts; channel messages are still encoded (or decoded once).
                await self.dispatch(item if type(item) is dict else deserialize(item))
        except StopConsumer:
            pass
        finally:
            queue.direct = None
            if pump_task is not None:
                pump_task.cancel()
            await layer.release(self.channel_name)

    group_kinds: frozenset[str] = frozenset(("text", "bytes"))  # set by gw.accept's `kinds`

    # ---------------------------------------------------------- websocket.* ----
    async def websocket_connect(self, message):
        """Called when the client starts the handshake."""
        self.match = routes.load().match_websocket(self.scope["path"])
        self.route_name = self.match.route.name if self.match else "unknown"
        hs = await read_handshake(self.scope)
        if not origin_allowed(hs.origin):
            metrics.CONNECTS.labels(self.route_name, "bad_origin").inc()
            await self.send({"type": "websocket.close"})  # before accept: HTTP 403
            return
        await self.send({"type": "websocket.accept", "subprotocol": hs.subprotocol})
        self.state = "connecting"
        if self.match is None:
            return await self.close(CloseCode.NOT_FOUND, "unknown_route")
        if hs.identity is None:
            return await self.close(CloseCode.UNAUTHORIZED, "unauthorized")
        route = self.match.route
        if route.staff_only and not hs.identity.is_staff:
            return await self.close(CloseCode.FORBIDDEN, "forbidden")

        try:
            # The route's typed parameters; a query naming a path parameter is refused,
            # so the path always says which room or document this socket is on.
            self.params = {**self.match.params, **route.parse_query(query_pairs(self.scope))}
        except ParamError:
            return await self.close(CloseCode.BAD_REQUEST, "bad_params")
        self.identity = hs.identity
        over = await connections.registry.admit(self, hs.identity.id, clientip.of_scope(self.scope))
        if over:
            return await self.close(CloseCode.TOO_MANY_SOCKETS, f"too_many_sockets_{over}")
        # A route may allow more (collab: a keystroke is an update and a caret move).
        self.conn_bucket = LocalTokenBucket(*connection_rate(route))
        # A route may take larger frames (collab: a Yjs sync step 2 after offline work).
        self.max_bytes = route.max_message_bytes or env_int("WS_MAX_MESSAGE_BYTES")
        self.pending_client: list[dict] = []
        self.pending_group: list[dict] = []
        # group -> (seq, part, parts of that seq) of the last stream frame this socket
        # has (GwSend).
        self.watermarks: dict[str, tuple[int, float, int]] = {}
        self.groups: set[str] = set()
        self.told_service = False
        self.member = Member(self.channel_name, self.identity.id, self.identity.username)
        group = self.match.group(self.identity.id)
        # Join before asking the service, so nothing broadcast between the service's
        # snapshot (history) and our subscription is missed; see gw_accept.
        if group:
            await self.join(group)
        self.topics = [ALL, route_topic(route.name)] + ([group] if group else [])
        await connections.registry.add(self)
        self.registered = True
        self.session_key = hs.session_key  # rechecked by the registry (password change)
        if hs.expires_at is not None:
            # Not past what let it in: the token's exp plus a grace for the refresh.
            left = hs.expires_at + env_float("TOKEN_EXPIRY_GRACE_SECONDS") - time.time()
            self.expiry_timer = asyncio.get_running_loop().call_later(
                max(0.0, left), lambda: asyncio.ensure_future(self.close(CloseCode.TOKEN_EXPIRED, "token_expired"))
            )
        metrics.CONNECTIONS.labels(self.route_name).inc()

        if not route.inbox:  # served by ws-gateway itself (e.g. /ws/tasks/)
            return await self.gw_accept({"type": "gw.accept", "frames": []})
        self.inbox = self.match.inbox_channel(self.identity.id)
        if not await self.to_service("gw.connect"):
            return await self.close(CloseCode.TRY_AGAIN_LATER, "inbox_full")
        self.told_service = True
        loop = asyncio.get_running_loop()
        self.connect_timer = loop.call_later(
            env_float("CONNECT_TIMEOUT_SECONDS"), lambda: asyncio.ensure_future(self.connect_timed_out())
        )

    async def websocket_receive(self, message):
        """Called for each frame from the client."""
        if self.state not in ("connecting", "open") or self.closing:
            return
        text, data = message.get("text"), message.get("bytes")
        size = len(data) if data is not None else len(text or "")
        # len(str) undercounts multi-byte characters; encode only when it could matter.
        if text is not None and size * 4 > self.max_bytes:
            size = len(text.encode())
        if size > self.max_bytes:
            return await self.close(CloseCode.MESSAGE_TOO_BIG, "too_large")
        metrics.FRAMES.labels(self.route_name, "in").inc()

        decision = self.conn_bucket.take()
        scope = "connection"
        if decision.allowed:
            decision = await connections.registry.take_user_budget(self.identity.id)
            scope = "user"
        binary = data is not None
        if not decision.allowed:
            metrics.RATE_LIMITED.labels(scope).inc()
            return await self.error(
                ErrorCode.RATE_LIMITED, f"too many frames ({scope} limit)", decision.retry_after, binary=binary
            )

        command: GwReceive = {"type": "gw.receive"}  # conn, route, user, params: to_service
        if data is not None:
            if not self.match.route.binary:
                return await self.error(ErrorCode.BINARY_NOT_SUPPORTED, "this route takes JSON text frames")
            command["bytes"] = data
        else:
            try:
                parsed = parse_client_frame(self.route_name, text)
            except FrameError as exc:
                return await self.error(exc.code, exc.message)
            if isinstance(parsed, Ping):
                return await self.send_text(frame("pong"))
            command["frame"] = parsed.model_dump(exclude_none=True)
        if self.state == "connecting":
            if len(self.pending_client) >= PENDING_CLIENT_FRAMES:
                return await self.error(ErrorCode.BUSY, "wait for the first frames before sending", 1.0, binary=binary)
            self.pending_client.append(command)
            return
        if not await self.to_service(command):
            await self.error(ErrorCode.BUSY, "the service is busy, retry", 1.0, binary=binary)

    async def websocket_disconnect(self, message):
        """Called when the socket closed, from either end."""
        self.state = "closed"
        if self._queue is not None:
            self._queue.direct = None
        await connections.registry.release(self)
        if getattr(self, "registered", False):
            for name in ("connect_timer", "expiry_timer"):
                timer = getattr(self, name, None)
                if timer:
                    timer.cancel()
            metrics.CONNECTIONS.labels(self.route_name).dec()
            await connections.registry.remove(self)
            for group in list(self.groups):
                await self.channel_layer.group_discard(group, self.channel_name)
            if self.told_service:
                await self.to_service("gw.disconnect", code=message.get("code", 1000))
        raise StopConsumer()

    # ------------------------------------------------ gw.* from the services ----
    async def gw_accept(self, message):
        """The service accepted: send its first frames, then what waited."""
        if self.state != "connecting" or self.closing:
            # Closed while connecting (a Yjs client over its rate limit: 4029): the
            # accept's frames would be sent on a closed protocol.
            return
        timer = getattr(self, "connect_timer", None)
        if timer:
            timer.cancel()
        self.state = "open"
        metrics.CONNECTS.labels(self.route_name, "accepted").inc()
        if self._protocol is not None:
            self._queue.direct = self.send_group_now
        self.watermarks = {group: (int(seq), ALL_PARTS, 0) for group, seq in (message.get("watermarks") or {}).items()}
        self.group_kinds = frozenset(message.get("kinds") or ("text", "bytes"))
        for group in message.get("groups") or []:
            await self.join(group)
        for first in message.get("frames", []):
            if isinstance(first, bytes):
                await self.send_bytes(first)
            else:
                await self.send_text(first)
        pending, self.pending_group = self.pending_group, []
        for event in pending:
            await self.gw_send(event)
        commands, self.pending_client = self.pending_client, []
        for command in commands:
            if not await self.to_service(command):
                await self.error(ErrorCode.BUSY, "the service is busy, retry", 1.0, binary="bytes" in command)

    async def gw_reject(self, message):
        await self.close(int(message.get("code", CloseCode.FORBIDDEN)), "rejected")

    async def gw_close(self, message):
        user = message.get("user")
        if user is not None and user != self.identity.id:
            return  # a group close for another user's sockets (collab: a revoked role)
        await self.close(int(message.get("code", CloseCode.NORMAL)), "closed_by_service")

    async def gw_send(self, message):
        """Forward a frame as is; filters are on fields the service set, not on content."""
        if self.state == "connecting":
            if len(self.pending_group) >= PENDING_GROUP_FRAMES:
                return await self.close(CloseCode.TRY_AGAIN_LATER, "backlog")
            self.pending_group.append(message)
            return
        if self.state != "open" or self.closing:
            # Closed by the service or the gateway: a reply still on its way (collab
            # answers a sync sent after a malformed message it closed for) would raise
            # in daphne ("send on a closed protocol") and end the consumer with a trace.
            return
        out = self.outgoing(message)
        if out is None:
            return
        if out is GAP:
            metrics.STREAM_GAPS.labels(self.route_name).inc()
            return await self.close(CloseCode.RECONNECT, "gap")
        if out[0] == "text":
            await self.send_text(out[1])
        else:
            await self.send_bytes(out[1])

    def outgoing(self, message) -> tuple[str, str | bytes] | None:
        """(kind, payload) this open socket is to be sent for a gw.send, None, or GAP."""
        seq = message.get("seq")
        if seq is not None:
            group = message.get("group", "")
            mark = self.watermarks.get(group)  # (seq, part, parts of that seq)
            if mark is not None:
                part = message.get("part", 0)
                at = (seq, part)
                if at <= mark:
                    return None  # in the history sent on accept, or sent already
                if seq > mark[0]:
                    # A new seq: the last one had all its parts, this is its first part,
                    # and no seq between never came (at-most-once layer, or a service
                    # killed between storing and publishing, or between two parts).
                    if seq > mark[0] + 1 or part != 0 or mark[1] + 1 < mark[2]:
                        return GAP
                elif part > mark[1] + 1:
                    return GAP  # a part of this seq was skipped
                # The stream moves on whether or not this socket is sent the frame: the
                # filters below are the service saying it need not be.
                self.watermarks[group] = (seq, part, message.get("parts", 1))
        if message.get("exclude_conn") == self.channel_name:
            return None
        if message.get("exclude_user") is not None and message["exclude_user"] == self.identity.id:
            return None
        kind = "text" if "text" in message else "bytes"
        if "group" in message and kind not in self.group_kinds:
            return None  # a group that carries two protocols (collab): not this socket's
        if kind == "text":
            return kind, message["text"]
        if "bytes" in message:
            return kind, message["bytes"]
        return None

    def send_group_now(self, item) -> bool:
        """A group frame for an idle open socket, written now (SocketQueue.direct).

        Called by the layer's reader while this consumer is parked in get() with
        nothing queued, so writing here keeps the socket's order; it is what gw_send
        would do on the next loop turn, without a task wake-up per socket
        (bench/results/hot-path-changes.md: p99 of a 1,000-socket fan-out). The write goes through daphne's
        protocol, so the bounded send buffer and the 4008 close still apply. False:
        not a decoded group gw.send, or the socket is no longer plainly open."""
        message = decoded(item)
        if message is None or message.get("type") != "gw.send" or self.state != "open" or self.closing:
            return False
        out = self.outgoing(message)
        if out is None:
            return True
        if out is GAP:
            return False  # gw_send closes it (async)
        protocol = self._protocol
        kind, payload = out
        if not payload:  # daphne sends no empty frame either
            return True
        if protocol.state != protocol.STATE_OPEN:
            # Closing or closed (daphne's "disconnected" follows autobahn's close):
            # autobahn would refuse the frame, and the consumer die of it; the client
            # gets what it missed on reconnect.
            return True
        counter = self._frames_out
        if counter is None:
            counter = self._frames_out = metrics.FRAMES.labels(self.route_name, "out")
        count_soon(counter)
        if protocol._perMessageCompress is None:
            # The frame every member sends, encoded once (layers.prepared).
            frame = prepared(item, payload)
            if daphne_send_bound.admit(protocol, len(frame.payloadHybi)):
                protocol.sendPreparedMessage(frame)
        else:  # compressed per socket: daphne's own path
            protocol.serverSend(payload, kind == "bytes")
        return True

    async def dispatch(self, message):
        """An unknown message type is counted and ignored, never a dead socket."""
        handler = getattr(self, message.get("type", "").replace(".", "_"), None)
        if handler is None or message["type"].startswith("_"):
            metrics.UNKNOWN_MESSAGES.inc()
            log.warning("gateway: ignoring channel message of type %r", str(message.get("type"))[:40])
            return
        await handler(message)

    # ----------------------------------------------------------------- helpers ----
    async def join(self, group: str) -> None:
        if group not in self.groups:
            self.groups.add(group)
            await self.channel_layer.group_add(group, self.channel_name)

    async def to_service(self, command: dict | str, **extra) -> bool:
        """Send a command to this connection's inbox shard; False when it is full."""
        if isinstance(command, str):
            command = {"type": command}
        command.update(
            conn=self.channel_name,
            route=self.route_name,
            user=self.identity.as_dict(),
            params=self.params,
            **extra,
        )
        try:
            await get_channel_layer("inbox").send(self.inbox, command)
            return True
        except ChannelFull:
            return False

    async def connect_timed_out(self):
        if self.state == "connecting":
            await self.close(CloseCode.TRY_AGAIN_LATER, "service_timeout")  # close() counts the attempt

    def _count_out(self) -> None:
        counter = self._frames_out
        if counter is None:  # labels() takes a lock and a dict lookup: once per socket
            counter = self._frames_out = metrics.FRAMES.labels(self.route_name, "out")
        counter.inc()

    async def send_text(self, text: str) -> None:
        self._count_out()
        await self.send({"type": "websocket.send", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        metrics.FRAMES.labels(self.route_name, "out").inc()
        await self.send({"type": "websocket.send", "bytes": data})

    async def error(self, code: str, message: str, retry_after: float | None = None, binary: bool = False) -> None:
        """An error frame about a client frame, or a close for a client that cannot read one.

        A binary-only socket (gw.accept `kinds`), and before the service has said so any
        socket that sent a binary frame on a binary route (a Yjs client syncs before it
        is accepted), reads every frame as a protocol message: a text frame crashed
        y-websocket ("Unexpected end of array"). It is closed instead, with a code it
        reconnects after; the reconnect's sync delivers whatever was refused here."""
        metrics.FRAME_ERRORS.labels(self.route_name, str(code)).inc()
        if self.group_kinds == BINARY_ONLY or (binary and self.match.route.binary):
            close = CloseCode.RATE_LIMITED if code == ErrorCode.RATE_LIMITED else CloseCode.TRY_AGAIN_LATER
            return await self.close(close, str(code))
        await self.send_text(error_frame(code, message, retry_after))

    async def close(self, code: int, why: str) -> None:
        if self.state == "closed" or self.closing:
            return  # a timer's close after the socket went (expiry, session recheck)
        self.closing = True
        if self._queue is not None:
            self._queue.direct = None
        metrics.CLOSES.labels(self.route_name, str(int(code))).inc()
        if self.state == "connecting" and why != "rejected":
            metrics.CONNECTS.labels(self.route_name, why).inc()
        reason = REASONS.get(code, "")
        await self.send({"type": "websocket.close", "code": int(code), "reason": reason})
