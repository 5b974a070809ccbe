"""Bound the bytes daphne holds for one slow WebSocket client; close it with 4008.

daphne writes every frame into Twisted's transport buffer, which grows without bound
when the client stops reading (nginx and the kernel buffer first, then the gateway's
heap): daphne#170 ("TCP bufferbloat if WebSocket server keeps pushing data quickly to
a slow client", open), https://github.com/django/daphne/issues/170. The channel
layer's local per-channel queues have no bound either (django/channels#1361,
https://github.com/django/channels/issues/1361), so a room broadcast to one stuck
socket would grow the process until it dies, taking every other socket of the process
with it.

Before each send this checks the bytes still held for the client (Twisted's
FileDescriptor keeps them in `dataBuffer` + `_tempDataLen`, the kernel in the socket's
send queue); above
WS_SEND_BUFFER_BYTES the frame is dropped and the socket is closed with 4008
(SLOW_CONSUMER): the client reconnects with `?since=` and gets what it missed from the
service's history, so nothing acknowledged is lost, and the process keeps at most
about WS_SEND_BUFFER_BYTES plus one frame per socket. Installed once, by ws_gateway.asgi.

A frame for a socket that is already closing is dropped here too. autobahn takes a
client's close frame (or drops the connection) at once, but the consumer hears of it
only when daphne's `websocket.disconnect` reaches it, behind whatever it was already
handling: a pong for a ping that came in the same packet as the close, the frames of a
gw.accept, a broadcast. Sent, autobahn raised `Disconnected: Attempt to send on a
closed protocol`, which ended the consumer before its disconnect cleanup (the socket
stayed counted against its user's cap, its presence stayed) with a traceback in the
log: dozens in make faults' reconnect storms. The client gets what it missed when it
reconnects, as after any close.

Asking the kernel costs a system call, and once per frame it was 7 % of a broadcast
(bench/profiles). What is held can only grow by what is written, so each socket keeps
an upper bound (held at the last check plus every frame since) and asks again only
when that bound passes the limit: a client that reads is asked once per
WS_SEND_BUFFER_BYTES or so written, a stuck one is closed at the same point as before.
"""

from __future__ import annotations

import fcntl
import logging
import struct
import termios

from daphne.ws_protocol import WebSocketProtocol

from switchboard import metrics
from switchboard.closecodes import CloseCode
from switchboard.config import env_int

log = logging.getLogger(__name__)
_original = WebSocketProtocol.serverSend


def buffered_bytes(transport) -> int:
    """Bytes held for this client: in Twisted's buffer, plus what the kernel's send
    queue has not had acknowledged yet (TIOCOUTQ, Linux). Counting the kernel's share
    too closes a stuck client after the limit, not after the kernel's autotuned send
    buffer (up to tcp_wmem's 4 MiB) has filled first."""
    held = len(getattr(transport, "dataBuffer", b"")) + int(getattr(transport, "_tempDataLen", 0) or 0)
    try:
        held += struct.unpack("i", fcntl.ioctl(transport.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
    except (AttributeError, OSError, ValueError):
        pass  # not a socket with a send queue we can ask about; Twisted's share still counts
    return held


# A frame's header, and room for the pings and pongs autobahn writes by itself.
FRAME_OVERHEAD = 16


def admit(self, size: int) -> bool:
    """May `size` more bytes be written to this socket? False: it is closing (4008) for
    holding more than WS_SEND_BUFFER_BYTES unread, and the frame is dropped."""
    # The consumer's direct group path calls this whether or not install() ran; with the
    # patch off (WS_PATCHES_DISABLE, the bench's "off") there is no limit and no
    # per-socket state: every frame goes, as daphne sends it. Our own attribute, set by
    # install(): no upstream name is read with a default here.
    limit = getattr(self.factory, "switchboard_send_limit", None)
    if limit is None:
        return True
    if self._switchboard_slow:
        return False  # closing: drop, the client re-reads history on reconnect
    bound = self._switchboard_bound + size + FRAME_OVERHEAD
    if bound > limit and self.transport is not None:
        held = buffered_bytes(self.transport)
        if held > limit:
            self._switchboard_slow = True
            metrics.CLOSES.labels("slow_consumer", str(int(CloseCode.SLOW_CONSUMER))).inc()
            log.warning("gateway: closing a slow client (more than %d bytes unread)", limit)
            # The close frame queues behind what is buffered: a client that resumes
            # reading gets its frames, then 4008. One that never reads never answers the
            # close either, so autobahn's close handshake timeout drops the TCP connection
            # and the buffer is freed.
            self.sendCloseFrame(code=int(CloseCode.SLOW_CONSUMER), isReply=False)
            return False
        bound = held + size + FRAME_OVERHEAD
    self._switchboard_bound = bound
    return True


def _server_send(self, content, binary=False):
    if self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
        return  # closing: the consumer's disconnect is on its way (see above)
    # UTF-8 takes at most 4 bytes a character: an upper bound without encoding twice.
    if admit(self, len(content) if binary else 4 * len(content)):
        _original(self, content, binary)


def install() -> None:
    from daphne.ws_protocol import WebSocketFactory

    WebSocketFactory.switchboard_send_limit = env_int("WS_SEND_BUFFER_BYTES")
    WebSocketProtocol._switchboard_slow = False
    WebSocketProtocol._switchboard_bound = 0  # bytes this socket may hold at most (see above)
    WebSocketProtocol.serverSend = _server_send
