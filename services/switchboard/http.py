"""REST plumbing shared by the services' HTTP faces: token auth, JSON bodies, errors.

`@api(methods=["GET"], staff=False)` authenticates the bearer token (tokens.verify),
refuses other methods, parses a JSON body into a pydantic model when the view names
one (`body=Model`), and turns a validation error into a 400 with a clear message.
"""

from __future__ import annotations

import functools

import orjson
from django.http import HttpRequest, HttpResponse
from pydantic import BaseModel, ValidationError

from switchboard import tokens


def json_response(data, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


def json_error(status: int, code: str, message: str) -> HttpResponse:
    return json_response({"error": code, "message": message}, status=status)


def bearer_identity(request: HttpRequest) -> tokens.Identity | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return tokens.verify(header[7:].strip())
    return None


def api(methods: list[str], *, staff: bool = False, auth: bool = True, body: type[BaseModel] | None = None):
    def decorate(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if request.method not in methods:
                return json_error(405, "method_not_allowed", f"use {', '.join(methods)}")
            request.identity = bearer_identity(request)
            if auth and request.identity is None:
                return json_error(401, "unauthorized", "a valid bearer token is required")
            if staff and not request.identity.is_staff:
                return json_error(403, "forbidden", "staff only")
            if body is not None and request.method in ("POST", "PUT", "PATCH"):
                try:
                    kwargs["data"] = body.model_validate_json(request.body or b"{}")
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(p) for p in first["loc"]) or "body"
                    return json_error(400, "invalid_body", f"{where}: {first['msg']}")
            return view(request, *args, **kwargs)

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
