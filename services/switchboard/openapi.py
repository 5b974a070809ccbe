"""Each service's OpenAPI document, built from what already decides its behaviour.

Paths and path parameters come from the service's URLconf (a Django converter's regex
is the parameter's pattern), and every operation from the `@api` decorator of its
view (switchboard.http.Endpoint): the methods, whether a bearer token, staff or an
API key of a scope (the `apiKey` scheme) is required, the pydantic models of the body and query string, and the statuses the
view declares. Nothing is written twice, so the document cannot disagree with the
code; tests-e2e/faults/test_openapi.py drives every operation with schemathesis.

`openapi_view(title)` serves the document at the URLconf's `api/<svc>/openapi.json`;
a URLconf pattern whose view has no `@api` is refused when the document is built.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from importlib import import_module

from django.conf import settings
from django.urls import URLPattern
from django.urls.converters import IntConverter
from pydantic import BaseModel

from switchboard.http import BODY_METHODS, Endpoint, json_response
from switchboard.routes import MAX_BODY_BYTES

ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}
# Statuses the decorator itself answers with, by the Endpoint field that causes them.
BAD_INPUT = "invalid body or query parameter"
RATE_LIMITED = "this API key's rate limit is spent; see Retry-After"
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}


def _hoist(schema: dict, components: dict) -> dict:
    """A pydantic schema with its $defs moved to components.schemas (refs point there)."""
    components.update(schema.pop("$defs", {}))
    return schema


def _model_schema(model: type[BaseModel], components: dict) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return _hoist(schema, components)


def _path_parameter(name: str, converter) -> dict:
    if isinstance(converter, IntConverter):
        schema = {"type": "integer", "minimum": 0}
    else:
        schema = {"type": "string", "pattern": f"^{converter.regex}$"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query_parameters(model: type[BaseModel], components: dict) -> list[dict]:
    schema = _model_schema(model, components)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema["properties"].items()
    ]


def _operation(method: str, ep: Endpoint, path_params: list[dict], components: dict) -> dict:
    declared = ep.responses.get(method, {200: "OK"})
    statuses = {status: text for status, text in declared.items()}
    op: dict = {"summary": ep.summary or method}
    params = list(path_params)
    if path_params:
        statuses.setdefault(404, "no such resource")
    if ep.query is not None and method == "GET":
        params += _query_parameters(ep.query, components)
        statuses.setdefault(400, BAD_INPUT)
    if params:
        op["parameters"] = params
    if method in BODY_METHODS and (ep.body is not None or ep.body_schema is not None):
        if ep.body is not None:
            schema = _model_schema(ep.body, components)
        else:
            schema = _hoist(copy.deepcopy(ep.body_schema), components)
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        statuses.setdefault(400, BAD_INPUT)
        # Answered by the proxy before the service sees it (routes.MAX_BODY_BYTES).
        statuses.setdefault(413, f"the body is over the proxy's limit of {MAX_BODY_BYTES} bytes")
    if ep.key_scope is not None:
        # The shop's back end: an API key (apikeys.py), never a user's token.
        op["security"] = [{"apiKey": []}]
        statuses.setdefault(401, "no valid API key (unknown, revoked, or a user token)")
        statuses.setdefault(403, f"this API key has no {ep.key_scope!r} scope")
        statuses.setdefault(429, RATE_LIMITED)
        statuses.setdefault(503, "the API key store is unreachable; retry")
    elif ep.auth:
        statuses.setdefault(401, "no valid bearer token")
    else:
        op["security"] = []
    if method in ep.staff:
        statuses.setdefault(403, "staff only")
    op["responses"] = {str(s): _response(s, text) for s, text in sorted(statuses.items())}
    return op


def _response(status: int, text: str) -> dict:
    if status >= 400:
        response = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if text == RATE_LIMITED:
            response["headers"] = RETRY_AFTER
        return response
    if text.startswith("file:"):  # a download: whatever type the file has
        return {"description": text[5:].strip(), "content": {"*/*": {"schema": {}}}}
    return {"description": text, "content": {"application/json": {"schema": {"type": "object"}}}}


def _template(pattern: URLPattern) -> str:
    # Django's <int:doc_id> is OpenAPI's {doc_id}.
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))


def build(urlconf: str, title: str, description: str = "") -> dict:
    """The OpenAPI 3.1 document of every /api/ pattern of `urlconf`."""
    components: dict = {"Error": ERROR}
    paths: dict = {}
    for pattern in import_module(urlconf).urlpatterns:
        if not str(pattern.pattern).startswith("api/"):
            continue
        ep = getattr(pattern.callback, "api", None)
        if ep is None:
            raise ValueError(f"{pattern.pattern}: its view has no @api, so it cannot be documented")
        converters = getattr(pattern.pattern, "converters", {})
        path_params = [_path_parameter(n, c) for n, c in converters.items()]
        paths[_template(pattern)] = {m.lower(): _operation(m, ep, path_params, components) for m in ep.methods}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1", "description": description},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                # The server API's: the shop's back end sends `Authorization: Bearer sbk_...`.
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "sbk_<key id>_<secret>",
                    "description": "An API key of the shop's back end (docs/server-api.md), scoped by capability.",
                },
            },
        },
        "security": [{"bearer": []}],
    }


def openapi_view(title: str, description: str = ""):
    """The view serving this service's document (public: it holds no data)."""
    from switchboard.http import api

    @cache
    def document() -> dict:
        return build(settings.ROOT_URLCONF, title, description)

    @api(["GET"], auth=False, responses={"GET": {200: "this OpenAPI document"}})
    def view(request):
        """This service's OpenAPI document."""
        return json_response(document())

    return view
