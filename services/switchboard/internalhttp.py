"""The event loop's client for one service's calls to another (aiohttp underneath).

Keep-alive connections (aiohttp retries a GET once on a kept connection the server
had closed, never a POST); answers come back as
httpx.Response (raise_for_status, json()) and failures as httpx errors (ConnectError,
ReadTimeout, RemoteProtocolError), so callers handle them as the sync path's httpx.

Why aiohttp and not httpx.AsyncClient: httpx's async transport (httpcore on anyio) spent
more of notification-http's CPU on one user lookup than the rest of the staff POST
(issue 21: 57% of the process's samples at 50 POSTs/s, most of it in anyio's stream
attributes, asked several times per request to see if a kept connection is alive).
aiohttp's client parses in C and keeps its pool on the loop it runs on.
"""

from __future__ import annotations

import asyncio

import aiohttp
import httpx


class Client:
    """One event loop's client (its connections belong to that loop)."""

    def __init__(self):
        self._session: aiohttp.ClientSession | None = None
        self.connects = 0  # connections opened so far (tests, the bench)

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            trace = aiohttp.TraceConfig()
            trace.on_connection_create_end.append(self._counted)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit_per_host=0, limit=0, keepalive_timeout=15),
                trace_configs=[trace],
                auto_decompress=True,
                raise_for_status=False,
            )
        return self._session

    async def _counted(self, session, ctx, params) -> None:
        self.connects += 1

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
        req = httpx.Request(method, url, params=params)
        try:
            async with self._open().request(
                method,
                str(req.url),
                headers=headers,
                data=content or None,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as res:
                body = await res.read()
                # The transfer and content codings are undone here: httpx must not
                # decode the body again.
                kept = [
                    (k, v) for k, v in res.headers.items() if k.lower() not in ("transfer-encoding", "content-encoding")
                ]
                return httpx.Response(res.status, headers=kept, content=body, request=req)
        except TimeoutError:
            raise httpx.ReadTimeout(f"no answer from {req.url.netloc.decode()} in {timeout} s", request=req) from None
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=req) from None
        except (aiohttp.ClientError, asyncio.IncompleteReadError) as exc:
            raise httpx.RemoteProtocolError(repr(exc), request=req) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
