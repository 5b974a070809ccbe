"""A small HTTP/1.1 client for one service's calls to another from the event loop.

Keep-alive connections over asyncio streams, a few idle ones kept per host; answers
come back as httpx.Response (raise_for_status, json()) and failures as httpx errors
(ConnectError, ReadTimeout, RemoteProtocolError), so callers handle them as before.
Plain http only: an https:// URL (a deployment's SERVICE_URLS may name one) goes
through httpx.AsyncClient.

Why not httpx.AsyncClient for everything: its transport (httpcore on anyio) spent more
of notification-http's CPU on one user lookup than the rest of the staff POST
(issue 21: 57% of the process's samples at 50 POSTs/s, most of it in anyio's stream
attributes, asked several times per request to see if a kept connection is alive).
What a call between services needs is small: one request and its answer on a kept
connection, Content-Length or chunked bodies.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode, urlsplit

import httpx

MAX_HEADER_LINES = 100
MAX_BODY = 16 * 1024 * 1024


class _Stale(Exception):
    """A kept connection the server had closed before our request (no answer byte)."""


class Client:
    """One event loop's client (its connections belong to that loop)."""

    def __init__(self, idle_per_host: int = 16):
        self.idle_per_host = idle_per_host
        self._idle: dict[tuple[str, int], list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}
        self._tls: httpx.AsyncClient | None = None
        self.connects = 0  # connections opened so far (tests, the bench)

    async def get(self, url: str, *, params: dict | None = None, headers: dict | None = None, timeout: float = 5):
        return await self.request("GET", url, params=params, headers=headers, timeout=timeout)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: dict | None = None,
        headers: dict | None = None,
        content: bytes = b"",
        timeout: float = 5,
    ) -> httpx.Response:
        parts = urlsplit(url)
        if parts.scheme != "http":
            if self._tls is None:
                self._tls = httpx.AsyncClient(timeout=timeout)
            return await self._tls.request(method, url, params=params, headers=headers, content=content)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if params:
            target += ("&" if parts.query else "?") + urlencode(params)
        full = f"{parts.scheme}://{parts.netloc}{target}"
        req = httpx.Request(method, full)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        head = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(content)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + content
        try:
            async with asyncio.timeout(timeout):
                try:
                    return await self._exchange(host, port, raw, req, reuse=True)
                except _Stale:
                    # The server had closed the kept connection (its keep-alive timeout):
                    # a GET is asked again on a new one, anything else may have been done.
                    if method not in ("GET", "HEAD"):
                        raise httpx.RemoteProtocolError("the kept connection was closed", request=req) from None
                    return await self._exchange(host, port, raw, req, reuse=False)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no answer from {parts.netloc} in {timeout} s", request=req) from None

    async def _exchange(self, host: str, port: int, raw: bytes, req: httpx.Request, reuse: bool) -> httpx.Response:
        key = (host, port)
        conn = None
        idle = self._idle.get(key, [])
        while reuse and idle and conn is None:
            reader, writer = idle.pop()
            if not (writer.is_closing() or reader.at_eof()):
                conn = reader, writer
            else:
                writer.close()
        kept = conn is not None
        if conn is None:
            try:
                conn = await asyncio.open_connection(host, port)
            except OSError as exc:
                raise httpx.ConnectError(f"{host}:{port}: {exc}", request=req) from None
            self.connects += 1
        reader, writer = conn
        done = False
        try:
            writer.write(raw)
            status_line = await reader.readline()
            if not status_line:
                if kept:
                    raise _Stale
                raise httpx.RemoteProtocolError("the server closed the connection without an answer", request=req)
            response, keep = await self._read_answer(reader, status_line, req)
            done = True
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            if kept and isinstance(exc, ConnectionError):
                writer.close()
                raise _Stale from None
            raise httpx.RemoteProtocolError(f"{host}:{port}: {exc!r}", request=req) from None
        finally:
            # A connection whose answer was not read to its end (an error, a timeout, a
            # cancelled caller) is in an unknown state: never reused.
            if not done:
                writer.close()
        if keep and len(idle) < self.idle_per_host:
            self._idle.setdefault(key, idle).append((reader, writer))
        else:
            writer.close()
        return response

    async def _read_answer(self, reader: asyncio.StreamReader, status_line: bytes, req: httpx.Request):
        try:
            version, code, *_ = status_line.decode("latin-1").split(" ", 2)
            status = int(code)
        except ValueError:
            raise httpx.RemoteProtocolError(f"not an HTTP answer: {status_line[:80]!r}", request=req) from None
        headers: list[tuple[str, str]] = []
        for _ in range(MAX_HEADER_LINES):
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        else:
            raise httpx.RemoteProtocolError("too many header lines", request=req)
        fields = {k.lower(): v for k, v in headers}
        keep = version == "HTTP/1.1" and fields.get("connection", "").lower() != "close"
        if "chunked" in fields.get("transfer-encoding", "").lower():
            body = bytearray()
            while True:
                size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                if len(body) + size > MAX_BODY:
                    raise httpx.RemoteProtocolError("answer too large", request=req)
                body += await reader.readexactly(size)
                await reader.readexactly(2)
            content = bytes(body)
        elif "content-length" in fields:
            length = int(fields["content-length"])
            if length > MAX_BODY:
                raise httpx.RemoteProtocolError("answer too large", request=req)
            content = await reader.readexactly(length)
        elif status in (204, 304) or 100 <= status < 200 or req.method == "HEAD":
            content = b""
        else:
            content = await reader.read(MAX_BODY)  # to the end: the connection is done
            keep = False
        # httpx must not decode the body again: the transfer coding is undone here.
        headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        return httpx.Response(status, headers=headers, content=content, request=req), keep

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for _, writer in conns:
                writer.close()
        self._idle.clear()
        if self._tls is not None:
            await self._tls.aclose()
