"""The server API's transport, sync (`Client`) and async (`AsyncClient`): one request
policy and one definition of every call for both (`_Api` builds each request, `_Call`
decides its retries without I/O; the two clients differ only in how they send and wait).

* Every call has a timeout (`timeout`, seconds, for connect, read and write each).
* A call that failed in a way that may not have reached Switchboard, or that Switchboard
  asks to repeat (a connection error, a timeout, 429, 500, 502, 503, 504), is tried again
  up to `retries` times, after an exponential backoff with full jitter (`backoff`,
  doubled per attempt, at most MAX_BACKOFF), or the `Retry-After` Switchboard sent (at
  most MAX_RETRY_AFTER).
* A POST carries an `Idempotency-Key`, made once per call and sent again on every retry,
  so a retry of a request that was stored before its answer was lost is stored once.
  Pass `idempotency_key=` to make a retry of your own (another process, a Celery task
  run twice) the same call too.
* Errors are the classes of errors.py; 4xx other than 429 are not retried.

Settings when not passed: SWITCHBOARD_URL (e.g. https://switchboard.example.com) and
SWITCHBOARD_API_KEY (`sbk_...`).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx

from switchboard_client import errors

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF = 10.0
MAX_RETRY_AFTER = 30.0
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.25
USER_AGENT = "switchboard-client-python/0.1.0"


class _Policy:
    """What the sync and async clients share: settings, headers, when and how long to
    wait before a retry, and the error an answer becomes."""

    def __init__(self, base_url, api_key, timeout, retries, backoff):
        base_url = base_url or os.environ.get("SWITCHBOARD_URL", "")
        if not base_url:
            raise ValueError("no Switchboard URL: pass base_url= or set SWITCHBOARD_URL")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("SWITCHBOARD_API_KEY", "")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.timeout, self.retries, self.backoff = timeout, retries, backoff

    def headers(self, method: str, idempotency_key: str | None) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex
        return headers

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Seconds before attempt `attempt + 1` (attempt 0 was the first)."""
        if response is not None and (after := _retry_after(response)) is not None:
            return min(after, MAX_RETRY_AFTER)
        return random.uniform(0, min(MAX_BACKOFF, self.backoff * 2**attempt))

    def retryable(self, attempt: int, response: httpx.Response | None) -> bool:
        return attempt < self.retries and (response is None or response.status_code in RETRY_STATUSES)

    def result(self, response: httpx.Response, attempts: int) -> Any:
        if response.status_code < 400:
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                return response.text
        return self.error(response, attempts)

    @staticmethod
    def error(response: httpx.Response, attempts: int):
        try:
            body = response.json()
        except ValueError:
            body = response.text[:500]
        code = body.get("error", "") if isinstance(body, dict) else ""
        message = body.get("message", "") if isinstance(body, dict) else str(body)
        cls = errors.error_for(response.status_code)
        extra = {"retry_after": _retry_after(response)} if cls is errors.RateLimited else {}
        raise cls(response.status_code, code or "error", message or response.reason_phrase, body, attempts, **extra)

    @staticmethod
    def transport_error(exc: httpx.HTTPError, attempts: int) -> errors.TransportError:
        cls = errors.Timeout if isinstance(exc, httpx.TimeoutException) else errors.TransportError
        return cls(f"{type(exc).__name__}: {exc}", attempts)


def _user(sub, user_id, name) -> dict:
    """The body's user: the shop's id (`sub`, with `name` for a user Switchboard never saw)
    or Switchboard's local id (`user_id`), exactly one."""
    if (sub is None) == (user_id is None):
        raise ValueError("name the user by exactly one of sub= (the shop's user id) or user_id= (Switchboard's)")
    if sub is not None:
        return {"sub": str(sub), **({"name": name} if name else {})}
    if name:
        raise ValueError("name= goes with sub= (it names a shop user Switchboard has not seen)")
    return {"user_id": int(user_id)}


def _jsonable(order: dict) -> dict:
    """The shop's order as JSON: Decimal totals and prices as strings, datetimes ISO."""

    def one(value):
        if isinstance(value, dict):
            return {k: one(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [one(v) for v in value]
        if hasattr(value, "isoformat"):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        return value

    return one(order)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: Switchboard sends seconds; back off instead


class _Call:
    """One request and its retries, with no I/O: what to send on every attempt (the same
    headers each time, so the same Idempotency-Key) and what each attempt's outcome
    means. Client and AsyncClient drive it, one blocking and one awaited."""

    def __init__(self, policy: _Policy, method: str, path: str, json: Any, params: dict | None, key: str | None):
        method = method.upper()
        self.policy = policy
        self.send = {
            "method": method,
            "url": policy.base_url + path,
            "json": json,
            "params": params,
            "headers": policy.headers(method, key),  # once: every retry sends the same key
        }
        self.attempt = 0
        self.result: Any = None

    def retry_in(self, outcome: httpx.Response | httpx.HTTPError) -> float | None:
        """Seconds to wait before the next attempt, or None: done, the answer in `result`
        (an error answer or a last transport failure raises instead)."""
        response = outcome if isinstance(outcome, httpx.Response) else None
        if not self.policy.retryable(self.attempt, response):
            if response is None:
                raise self.policy.transport_error(outcome, self.attempt + 1) from outcome
            self.result = self.policy.result(response, self.attempt + 1)
            return None
        delay = self.policy.delay(self.attempt, response)
        self.attempt += 1
        return delay


def _sent(request, send: dict) -> httpx.Response | httpx.HTTPError:
    try:
        return request(**send)
    except httpx.HTTPError as exc:
        return exc


async def _sent_async(request, send: dict) -> httpx.Response | httpx.HTTPError:
    try:
        return await request(**send)
    except httpx.HTTPError as exc:
        return exc


class _Api:
    """The server API's calls, written once: each builds its request (a _Call) and hands
    it to `_send`, which Client runs blocking and AsyncClient awaited (there every call
    returns an awaitable: `await sb.notify(...)`)."""

    _http_class: type = httpx.Client

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        http: httpx.Client | httpx.AsyncClient | None = None,
    ):
        self._policy = _Policy(base_url, api_key, timeout, retries, backoff)
        self._http = http or self._http_class(timeout=timeout)

    @property
    def base_url(self) -> str:
        return self._policy.base_url

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """One call, with the retries of the module's policy; the answer's JSON (None if
        empty). `idempotency_key`: a POST's key (made once per call when not given)."""
        return self._send(_Call(self._policy, method, path, json, params, idempotency_key))

    def _send(self, call: _Call) -> Any:
        raise NotImplementedError

    def notify(
        self,
        title: str,
        message: str = "",
        url: str | None = None,
        *,
        sub: str | int | None = None,
        user_id: int | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
    ):
        """Notify one user (stored, counted in unread, pushed to every open tab): the
        stored notification. The user is the shop's `sub` (made on first sight, named
        `name`) or Switchboard's `user_id`. `url`: a link on the shop's site."""
        body = {**_user(sub, user_id, name), "title": title, "message": message or ""}
        if url:
            body["url"] = url
        return self.request("POST", "/api/notifications/send/", json=body, idempotency_key=idempotency_key)

    def dashboard_order(self, order: dict, *, store: bool = False, idempotency_key: str | None = None):
        """Push the shop's new order to every staff dashboard (the seed's new_order frame):
        `order` has id, user (the buyer as staff read it), total, and optionally user_id,
        status, items [{name, quantity, price}], created. store=True also stores it as a
        Switchboard order (needs user_id; an Idempotency-Key stores it once)."""
        body = {"type": "new_order", "order": _jsonable(order), "store": bool(store)}
        return self.request("POST", "/api/dashboard/events/", json=body, idempotency_key=idempotency_key)

    def system_message(self, room: str, message: str, user: str = "system", *, idempotency_key: str | None = None):
        """Post a system message to chat room `room` (its slug), shown under `user`: stored
        with the room's next seq before every member gets it; the stored message."""
        path = f"/api/chat/rooms/{quote(str(room), safe='')}/system-messages/"
        return self.request("POST", path, json={"message": message, "user": user}, idempotency_key=idempotency_key)

    def dashboard_alert(self, message: str, level: str = "info"):
        """Store and push an alert (info, warning, critical) to every staff dashboard."""
        return self.request(
            "POST", "/api/dashboard/events/", json={"type": "alert", "level": level, "message": message}
        )

    def task_update(
        self,
        task_id: str,
        status: str,
        progress: int = 0,
        message: str = "",
        result: dict | None = None,
        *,
        sub: str | int | None = None,
        user_id: int | None = None,
        name: str | None = None,
    ):
        """The progress of the shop's own task `task_id` (status started, progress,
        completed, failed) to its user's /ws/tasks/ as the seed's task_update; stored, so
        a client that connects late reads the last state. A repeat of the final state is
        answered alike (retries are safe); a late "progress" after it is a Conflict."""
        body = {
            **_user(sub, user_id, name),
            "task_id": str(task_id),
            "status": status,
            "progress": int(progress),
            "message": message or "",
            "result": result or {},
        }
        return self.request("POST", "/api/reports/task-updates/", json=body)


class Client(_Api):
    """The server API, blocking (a Django view, a Celery task). Use as a context manager
    or call close(); one Client keeps its connections for many calls (`http=`: an
    httpx.Client of your own)."""

    _http_class = httpx.Client

    def _send(self, call: _Call) -> Any:
        while (delay := call.retry_in(_sent(self._http.request, call.send))) is not None:
            time.sleep(delay)
        return call.result

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncClient(_Api):
    """The server API for asyncio code; the same calls as Client, awaited (`http=`: an
    httpx.AsyncClient of your own)."""

    _http_class = httpx.AsyncClient

    async def _send(self, call: _Call) -> Any:
        while (delay := call.retry_in(await _sent_async(self._http.request, call.send))) is not None:
            await asyncio.sleep(delay)
        return call.result

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
