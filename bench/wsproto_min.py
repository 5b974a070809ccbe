"""A minimal asyncio WebSocket client protocol for the load client.

Why not the `websockets` client: at 1,000 receivers the client parses tens of
thousands of frames per second on one core, and a general-purpose client spends most
of that in its own machinery (tasks, queues, per-frame objects). This one is an
asyncio.Protocol: the handshake, unfragmented and fragmented frames, ping/pong and
close, and a callback per message, nothing else. It never offers permessage-deflate.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import Callable

_MASK = os.urandom(4)
_MASK_INT = int.from_bytes(_MASK, "big")


def _masked(payload: bytes) -> bytes:
    n = len(payload)
    if not n:
        return b""
    # One big-int XOR masks the whole payload: fast enough for chat-sized frames.
    key = int.from_bytes((_MASK * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def encode_frame(payload: bytes, opcode: int = 1) -> bytes:
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + _MASK + _masked(payload)


class HandshakeError(Exception):
    pass


class WSClient(asyncio.Protocol):
    """One client socket. `on_message(client, payload_bytes)` is called per message."""

    def __init__(self, host: str, path: str, headers: dict[str, str], on_message: Callable):
        self.host, self.path, self.headers = host, path, headers
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self._buf = bytearray()
        self._open = False
        self._fragments: list[bytes] = []
        self.close_code: int | None = None
        self.state: dict = {}  # the scenario's per-socket fields

    # ------------------------------------------------------------- asyncio ----
    def connection_made(self, transport):
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ] + [f"{k}: {v}" for k, v in self.headers.items()]
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes):
        self._buf += data
        if not self._open:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self._buf[: self._buf.find(b"\r\n")])
            del self._buf[: end + 4]
            if b" 101 " not in status:
                if not self.opened.done():
                    self.opened.set_exception(HandshakeError(status.decode("latin-1")))
                self.transport.close()
                return
            self._open = True
            if not self.opened.done():
                self.opened.set_result(None)
        self._parse()

    def connection_lost(self, exc):
        if not self.opened.done():
            self.opened.set_exception(HandshakeError(f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    # -------------------------------------------------------------- frames ----
    def _parse(self):
        buf = self._buf
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = struct.unpack_from("!H", buf, pos + 2)[0]
                head = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if b1 & 0x80:  # servers do not mask; tolerate it anyway
                head += 4
            if size - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            if b1 & 0x80:
                mask = buf[pos + head - 4 : pos + head]
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            pos += head + n
            self._frame(b0 & 0x80, b0 & 0x0F, payload)
        if pos:
            del buf[:pos]

    def _frame(self, fin: int, opcode: int, payload: bytes):
        if opcode in (1, 2):
            if fin:
                self.on_message(self, payload)
            else:
                self._fragments = [payload]
        elif opcode == 0:
            self._fragments.append(payload)
            if fin:
                data, self._fragments = b"".join(self._fragments), []
                self.on_message(self, data)
        elif opcode == 9:  # ping
            self.transport.write(encode_frame(payload, 10))
        elif opcode == 8:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            if not self.transport.is_closing():
                self.transport.write(encode_frame(payload[:2], 8))
                self.transport.close()

    # ----------------------------------------------------------------- api ----
    def send(self, payload: bytes) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.write(encode_frame(payload))

    def close(self) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.write(encode_frame(struct.pack("!H", 1000), 8))
            # The server answers and closes; abort anyway if it does not in time.
            asyncio.get_running_loop().call_later(2, self.transport.abort)


async def connect(host: str, port: int, path: str, headers: dict[str, str], on_message: Callable) -> WSClient:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: WSClient(f"{host}:{port}", path, headers, on_message), host, port)
    await proto.opened
    return proto
