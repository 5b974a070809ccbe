"""A real daphne WebSocket on a real loopback TCP connection, inside the test's process:
what ws-gateway's library patches change is seen on the wire, byte for byte.

daphne's Server builds its WebSocketFactory in run(), which also starts the reactor, so
`Wire` builds the factory the way run() does (with the real Server behind it: its
create_application and handle_reply), hands each protocol Twisted's own TCP transport
(tcp.Server over an accepted loopback socket) and plays the client on the other
socket. No reactor runs: the transport's reactor is a MemoryReactor, and `turn()` is
what the reactor would do once the socket is writable (doWrite). So a test sees what
daphne sends at once and what waits for the loop, and a client that does not read is
just a socket nobody reads.

`patched(*modules)` gives a test the libraries as upstream ships them plus the patches
it names, and puts back whatever was there afterwards (ws_gateway.asgi, imported by
other tests, installs them all for the rest of the process).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import os
import select
import socket
import struct

from daphne.server import Server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet import address, tcp
from twisted.internet.testing import MemoryReactorClock
from twisted.python import failure

OPCODES = {0x1: "text", 0x2: "binary", 0x8: "close", 0x9: "ping", 0xA: "pong"}


def _owners():
    """Everything a ws_gateway patch sets attributes on (patches.py lists what each
    touches)."""
    from autobahn.websocket import protocol as autobahn_protocol

    return (WebSocketProtocol, WebSocketFactory, Server, tcp.Connection, autobahn_protocol)


def _snapshot() -> list[tuple[object, dict]]:
    return [(owner, dict(vars(owner))) for owner in _owners()]


def _restore(snapshot) -> None:
    for owner, before in snapshot:
        for key in set(vars(owner)) - set(before):
            delattr(owner, key)
        for key, value in before.items():
            if vars(owner).get(key, object()) is not value:
                setattr(owner, key, value)


# The libraries as upstream ships them, taken when pytest collects the tests (before
# any test imports ws_gateway.asgi, which installs every patch for the rest of the
# process).
UPSTREAM = _snapshot()
_installed = [
    f"{getattr(owner, '__name__', owner)}.{key}"
    for owner, attrs in UPSTREAM
    for key, value in attrs.items()
    if getattr(value, "__module__", "").startswith("ws_gateway")
]
assert not _installed, f"ws_gateway patches were installed before {__name__} was imported: {_installed}"


@contextlib.contextmanager
def patched(*modules: str):
    """The libraries as upstream ships them plus ws_gateway.<module>.install() for each
    of `modules` (none: upstream's alone); on exit, whatever was there before."""
    before = _snapshot()
    try:
        _restore(UPSTREAM)
        for name in modules:
            importlib.import_module(f"ws_gateway.{name}").install()
        yield
    finally:
        _restore(before)


class App:
    """The ASGI application behind the socket: it takes websocket.connect, then leaves
    every decision (accept, send, close) to the test, through the real `send` daphne
    gave it."""

    def __init__(self):
        self.scope = None
        self.receive = None
        self.send = None
        self.connected = asyncio.Event()
        self._done = asyncio.get_running_loop().create_future()

    async def __call__(self, scope, receive, send):
        self.scope, self.receive, self.send = scope, receive, send
        assert (await receive())["type"] == "websocket.connect"
        self.connected.set()
        await self._done

    def stop(self):
        if not self._done.done():
            self._done.set_result(None)


def loopback(sndbuf: int | None = None, rcvbuf: int | None = None) -> tuple[socket.socket, socket.socket]:
    """(server end, client end) of one TCP connection on 127.0.0.1; small buffers make
    a client that does not read fill them after a few KB instead of megabytes."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    client.connect(listener.getsockname())
    server, _ = listener.accept()
    listener.close()
    if sndbuf:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    client.setblocking(False)
    return server, client


class Wire:
    """One daphne WebSocketProtocol on one loopback connection; the test is the client."""

    def __init__(self, sndbuf: int | None = None, rcvbuf: int | None = None):
        self.app = App()
        # As daphne's Server.run() makes it (without listening or starting the reactor).
        self.server = Server(self.app, endpoints=["tcp:port=0"])
        self.server.connections = {}
        self.reactor = MemoryReactorClock()
        self.factory = WebSocketFactory(self.server, server=self.server.server_name, reactor=self.reactor)
        self.factory.setProtocolOptions(
            autoPingTimeout=self.server.ping_timeout,
            allowNullOrigin=True,
            openHandshakeTimeout=self.server.websocket_handshake_timeout,
            maxMessagePayloadSize=self.server.websocket_max_message_size,
            maxFramePayloadSize=self.server.websocket_max_frame_size,
        )
        self._sockets = loopback(sndbuf, rcvbuf)
        self.client = self._sockets[1]
        self._inbox = b""
        self.protocol: WebSocketProtocol | None = None
        self.transport: tcp.Server | None = None

    # -- the server side --------------------------------------------------------

    async def connect(self, path: str = "/ws/test/", headers: dict[str, str] | None = None) -> None:
        """The client's opening handshake reaches daphne, which makes the application
        instance (Server.create_application); returns once the app has
        websocket.connect. Nothing is answered yet: the app decides."""
        server_sock = self._sockets[0]
        host, port = self.client.getsockname()
        self.protocol = self.factory.buildProtocol(address.IPv4Address("TCP", host, port))
        self.protocol._raw_query_string = b""  # as daphne's HTTP protocol sets it
        self.transport = tcp.Server(server_sock, self.protocol, (host, port), None, 1, self.reactor)
        self.protocol.makeConnection(self.transport)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            "Host: 127.0.0.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        self.client_sends(("\r\n".join(lines) + "\r\n\r\n").encode())
        await asyncio.wait_for(self.app.connected.wait(), 5)

    async def accept(self, **kwargs) -> dict[str, str]:
        """The app accepts; returns the 101 response's headers (lower-case names)."""
        await self.app.send({"type": "websocket.accept", **kwargs})
        self.turn()
        head = self._read_until(b"\r\n\r\n")
        status, *lines = head.decode().split("\r\n")
        assert status.startswith("HTTP/1.1 101"), status
        return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines if line)}

    async def open(self, **kwargs) -> dict[str, str]:
        await self.connect(**kwargs)
        return await self.accept()

    def turn(self) -> None:
        """One turn of the reactor's write side: every transport waiting to write is
        told the socket is writable, as the reactor would."""
        for writer in list(self.reactor.getWriters()):
            why = writer.doWrite()
            if why:
                writer.connectionLost(failure.Failure(why))

    def held(self) -> int:
        """Bytes Twisted holds for the client, not yet handed to the kernel."""
        return len(self.transport.dataBuffer) - self.transport.offset + self.transport._tempDataLen

    # -- the client side --------------------------------------------------------

    def client_sends(self, data: bytes) -> None:
        """The client writes; daphne reads it as the reactor would once it is there."""
        self.client.sendall(data)
        select.select([self._sockets[0]], [], [], 5)
        self.transport.doRead()

    def _recv_now(self) -> bytes:
        got = []
        while True:
            try:
                chunk = self.client.recv(1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            got.append(chunk)
        return b"".join(got)

    def _read_until(self, marker: bytes) -> bytes:
        select.select([self.client], [], [], 5)
        self._inbox += self._recv_now()
        head, sep, rest = self._inbox.partition(marker)
        assert sep, f"no {marker!r} from the server yet; got {self._inbox[:200]!r}"
        self._inbox = rest
        return head

    def frames(self, raw: bool = False) -> list[tuple]:
        """Every whole frame that has reached the client's socket so far, as
        (kind, payload), or (first header byte, payload) if `raw`; server frames are
        unmasked (RFC 6455 5.1)."""
        self._inbox += self._recv_now()
        out = []
        while len(self._inbox) >= 2:
            b0, b1 = self._inbox[0], self._inbox[1]
            length, at = b1 & 0x7F, 2
            if length == 126:
                if len(self._inbox) < 4:
                    break
                (length,), at = struct.unpack("!H", self._inbox[2:4]), 4
            elif length == 127:
                if len(self._inbox) < 10:
                    break
                (length,), at = struct.unpack("!Q", self._inbox[2:10]), 10
            if len(self._inbox) < at + length:
                break
            kind = b0 if raw else OPCODES.get(b0 & 0x0F, hex(b0 & 0x0F))
            out.append((kind, self._inbox[at : at + length]))
            self._inbox = self._inbox[at + length :]
        return out

    @staticmethod
    def close_code(payload: bytes) -> int:
        return struct.unpack("!H", payload[:2])[0]

    def close(self) -> None:
        self.app.stop()
        for sock in self._sockets:
            sock.close()
