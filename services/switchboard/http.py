"""REST plumbing shared by the services' HTTP faces: token auth, JSON bodies, errors.

`@api(methods=["GET"], staff=False)` authenticates the bearer token (tokens.verify),
requires staff (for every method, or for those listed: `staff=["POST"]`), or, with
`key_scope="notify"`, takes an API key of the shop's back end instead of a token
(switchboard/apikeys.py: 401 unknown or revoked, 403 without that scope, 429 over the
key's rate with Retry-After, 503 when the key store is unreachable; the key's record
is `request.api_key`, and no user token is accepted there),
refuses other methods (405 with Allow), parses a JSON body into a pydantic model when
the view names one (`body=Model`), the query string of a GET into another
(`query=Model`), and turns a validation error into a 400 with a clear message. Every
JSON body of a POST/PUT/PATCH is refused (400 `invalid_text`) when any string in it holds
a control character (switchboard/text.py), so no view stores one.

A view may be `async def` (notification's hot POST, issue 21): it then runs on the event
loop with the same checks, a shop token's mapping and the API key lookup in a thread.

What the decorator knows (methods, auth, models, the statuses a view declares in
`responses`) stays on the view as `view.api`: switchboard/openapi.py builds each
service's OpenAPI document from it and the URLconf, so the document cannot drift.
`not_found` and `server_error` are the services' JSON handler404/handler500.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from asgiref.sync import iscoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse
from pydantic import BaseModel, ValidationError

from switchboard import apikeys, text, tokens, users


def json_response(data, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


def json_error(status: int, code: str, message: str) -> HttpResponse:
    return json_response({"error": code, "message": message}, status=status)


def bearer_identity(request: HttpRequest) -> tokens.Identity | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return tokens.verify(header[7:].strip())
    return None


async def bearer_identity_async(request: HttpRequest) -> tokens.Identity | None:
    """bearer_identity for an async view: a Switchboard token on the loop, a shop token's
    mapping (it may block) in a worker thread (tokens.verify_async)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return await tokens.verify_async(header[7:].strip())
    return None


BODY_METHODS = ("POST", "PUT", "PATCH")


def _control_character(raw: bytes) -> str | None:
    # Every JSON body, whether a model or the view parses it: one check for all writes.
    # A body that is not JSON is the model's (or the view's) 400 to give.
    if not raw:
        return None
    try:
        return text.control_character(orjson.loads(raw))
    except orjson.JSONDecodeError:
        return None


def _first_error(exc: ValidationError, default: str) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or default
    return f"{where}: {first['msg']}"


@dataclass(frozen=True)
class Endpoint:
    """What `@api` enforces for a view, kept for its OpenAPI document.

    responses: {method: {status: description}} for the statuses the view itself
    returns (its successes, 404, 409 ...); the decorator's own (400, 401, 403) are
    added from the other fields. body_schema documents a body the view parses itself.
    """

    methods: tuple[str, ...]
    auth: bool
    staff: tuple[str, ...]  # the methods only staff may use
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    responses: dict[str, dict[int, str]] = field(default_factory=dict)
    body_schema: dict[str, Any] | None = None
    summary: str = ""
    key_scope: str | None = None  # an API key with this scope, not a token, is required


def _key_refused(exc: apikeys.KeyRefused) -> HttpResponse:
    res = json_error(exc.status, exc.code, exc.message)
    if exc.retry_after is not None:
        res["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return res


def api(
    methods: list[str],
    *,
    staff: bool | list[str] = False,
    auth: bool = True,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    responses: dict[str, dict[int, str]] | None = None,
    body_schema: dict[str, Any] | None = None,
    key_scope: str | None = None,
):
    if key_scope is not None and key_scope not in apikeys.SCOPES:
        raise ValueError(f"key_scope {key_scope!r} is not one of {apikeys.SCOPES}")
    staff_methods = tuple(methods) if staff is True else tuple(staff or ())

    def decorate(view):
        def refused_method(request: HttpRequest) -> HttpResponse | None:
            if request.method not in methods:
                res = json_error(405, "method_not_allowed", f"use {', '.join(methods)}")
                res["Allow"] = ", ".join(methods)
                return res
            return None

        def checked(request: HttpRequest, kwargs: dict) -> HttpResponse | None:
            """After authentication: the refusal to answer with, or None (kwargs filled)."""
            if key_scope is None and auth and request.identity is None:
                return json_error(401, "unauthorized", "a valid bearer token is required")
            if request.method in staff_methods and not request.identity.is_staff:
                return json_error(403, "forbidden", "staff only")
            if query is not None and request.method == "GET":
                # What the document says: each parameter once, of its type ("" is
                # not an integer; a repeated one is not the last one silently).
                repeated = [k for k in request.GET if len(request.GET.getlist(k)) > 1 and k in query.model_fields]
                if repeated:
                    return json_error(400, "invalid_parameter", f"{repeated[0][:40]}: given more than once")
                given = {k: v for k, v in request.GET.items()}
                try:
                    kwargs["query"] = query.model_validate(given)
                except ValidationError as exc:
                    return json_error(400, "invalid_parameter", _first_error(exc, "query"))
            if request.method in BODY_METHODS and (bad := _control_character(request.body)):
                return json_error(400, "invalid_text", f"{bad}: control characters are not accepted in text")
            if body is not None and request.method in BODY_METHODS:
                try:
                    kwargs["data"] = body.model_validate_json(request.body or b"{}")
                except ValidationError as exc:
                    return json_error(400, "invalid_body", _first_error(exc, "body"))
            return None

        if iscoroutinefunction(view):
            # An async view runs on the event loop (no worker thread for the request):
            # what may block here (a shop token's mapping, the API key store) goes to
            # a thread; the rest is the same code as for a sync view.
            @functools.wraps(view)
            async def wrapper(request: HttpRequest, *args, **kwargs):
                if (res := refused_method(request)) is not None:
                    return res
                if key_scope is not None:
                    request.identity = None
                    try:
                        request.api_key = await sync_to_async(apikeys.check)(
                            request.headers.get("Authorization", ""), key_scope
                        )
                    except apikeys.KeyRefused as exc:
                        return _key_refused(exc)
                else:
                    try:
                        request.identity = await bearer_identity_async(request)
                    except tokens.AuthUnavailable:
                        return json_error(503, "auth_unavailable", "cannot check this token now; retry")
                if (res := checked(request, kwargs)) is not None:
                    return res
                try:
                    return await view(request, *args, **kwargs)
                except users.DirectoryUnavailable as exc:
                    return json_error(502, "upstream_error", str(exc))

        else:

            @functools.wraps(view)
            def wrapper(request: HttpRequest, *args, **kwargs):
                if (res := refused_method(request)) is not None:
                    return res
                if key_scope is not None:
                    # The shop's back end, by API key: a user's token is no key.
                    request.identity = None
                    try:
                        request.api_key = apikeys.check(request.headers.get("Authorization", ""), key_scope)
                    except apikeys.KeyRefused as exc:
                        return _key_refused(exc)
                else:
                    try:
                        request.identity = bearer_identity(request)
                    except tokens.AuthUnavailable:
                        # A valid shop token whose user ws-gateway cannot name now: retry later.
                        return json_error(503, "auth_unavailable", "cannot check this token now; retry")
                if (res := checked(request, kwargs)) is not None:
                    return res
                try:
                    return view(request, *args, **kwargs)
                except users.DirectoryUnavailable as exc:
                    # One answer for every view that names a user through ws-gateway.
                    return json_error(502, "upstream_error", str(exc))

        wrapper.api = Endpoint(
            tuple(methods),
            auth,
            staff_methods,
            body,
            query,
            responses or {},
            body_schema,
            (view.__doc__ or "").strip().split("\n")[0],
            key_scope,
        )
        return wrapper

    return decorate


def int_param(request: HttpRequest, name: str, default: int | None, lo: int, hi: int) -> int | None:
    """A bounded integer query parameter; ValueError with a clear message otherwise."""
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}")
    return value


def bad_request(request: HttpRequest, exception=None) -> HttpResponse:
    """handler400: a request Django refused before any view (a body over the limit)."""
    return json_error(400, "bad_request", str(exception or "bad request")[:200])


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    """handler404: an API client gets JSON for a URL no pattern matches."""
    return json_error(404, "not_found", "no such resource")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: JSON, and nothing of the exception (it is in the log)."""
    return json_error(500, "internal_error", "the service failed on this request")
