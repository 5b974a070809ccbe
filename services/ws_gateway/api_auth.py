"""The auth API: tokens for API clients, and checks nginx asks the gateway about.

POST /api/auth/token/ {"username", "password"} -> 200 {"access", "expires_in"} | 401 | 429
GET  /api/auth/session-token/  a token for the logged-in web UI (session cookie)
GET  /api/auth/me/             who the bearer or session is
GET  /api/auth/check-staff/    200 staff, 401 anonymous, 403 other (nginx auth_request)
GET  /api/auth/users/?username=<name>   staff: that user's id (404 if none)
GET  /api/auth/stats/          staff: {"total_users": n}
POST /api/auth/subjects/ {"sub", "name"?}  services only: the local user of a shop
     subject, made on first sight (ws_gateway/shopusers.py)
GET  /api/auth/api-keys/       staff (bearer): the shop's API keys, newest first
POST /api/auth/api-keys/ {"name", "scopes"}  staff (bearer): 201 a new key, shown once
POST /api/auth/api-keys/<key id>/revoke/     staff (bearer): refused everywhere from now
"""

from __future__ import annotations

from typing import Literal

from django.contrib.auth import authenticate, get_user_model
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError

from switchboard import apikeys, tokens
from switchboard.config import env_int
from switchboard.http import api, bearer_identity, json_error, json_response
from ws_gateway import apikeystore, clientip, directory, shopusers, throttle


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=256)


class UserQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # Absent is "no such user" (404), so who may ask is still answered first.
    username: str = Field(default="", max_length=150)


class Subject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sub: str = Field(min_length=1, max_length=shopusers.MAX_SUB)
    name: str | None = Field(default=None, max_length=shopusers.MAX_USERNAME)


class NewApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=apikeystore.MAX_NAME, pattern=r"\S")
    scopes: list[Literal[apikeys.SCOPES]] = Field(min_length=1, max_length=len(apikeys.SCOPES))


# Every view but token() takes a bearer token or the web UI's session cookie, so the
# decorator does not require a token (auth=False) and each view says who may ask.
STAFF = {401: "no valid token or session", 403: "staff only"}


def _token_body(identity: tokens.Identity) -> dict:
    ttl = env_int("TOKEN_TTL_SECONDS")
    return {"access": tokens.issue(identity, ttl), "token_type": "Bearer", "expires_in": ttl}


def _identity(request) -> tokens.Identity | None:
    # @api has verified the bearer already (a shop token's subject mapped once per request).
    bearer = request.identity if hasattr(request, "identity") else bearer_identity(request)
    if bearer:
        return bearer
    user = request.user
    if user.is_authenticated:
        return tokens.Identity(user.pk, user.username, user.is_staff)
    return None


def throttled(wait: int):
    response = json_error(429, "throttled", f"too many failed logins, retry in {wait} s")
    response["Retry-After"] = str(wait)
    return response


@csrf_exempt  # a JSON API that takes no cookie-borne authority
@api(
    ["POST"],
    auth=False,
    body=Credentials,
    responses={
        "POST": {
            200: "a bearer token and its lifetime",
            401: "wrong username or password",
            429: "too many wrong passwords for this username or from this address; see Retry-After",
        }
    },
)
def token(request, data: Credentials):
    creds = data
    ip = clientip.of_request(request)
    wait = throttle.check(creds.username, ip)
    if wait:
        return throttled(wait)
    user = authenticate(request, username=creds.username, password=creds.password)
    if user is None or not user.is_active:
        throttle.failed(creds.username, ip)
        return json_error(401, "invalid_credentials", "wrong username or password")
    return json_response(_token_body(tokens.Identity(user.pk, user.username, user.is_staff)))


@api(["GET"], auth=False, responses={"GET": {200: "a bearer token", 401: "not logged in"}})
def session_token(request):
    if not request.user.is_authenticated:
        return json_error(401, "unauthorized", "log in first")
    user = request.user
    return json_response(_token_body(tokens.Identity(user.pk, user.username, user.is_staff)))


@api(["GET"], auth=False, responses={"GET": {200: "who you are", 401: "no valid token or session"}})
def me(request):
    identity = _identity(request)
    if identity is None:
        return json_error(401, "unauthorized", "no valid token or session")
    return json_response(identity.as_dict())


@api(["GET"], auth=False, responses={"GET": {200: "staff", **STAFF}})
def check_staff(request):
    identity = _identity(request)
    if identity is None:
        return json_error(401, "unauthorized", "log in as staff")
    if not identity.is_staff:
        return json_error(403, "forbidden", "staff only")
    return json_response({"ok": True})


@api(["GET"], auth=False, query=UserQuery, responses={"GET": {200: "the user's id", **STAFF, 404: "no such user"}})
def users(request, query: UserQuery):
    identity = _identity(request)
    if identity is None or not identity.is_staff:
        return json_error(401 if identity is None else 403, "forbidden", "staff only")
    username = query.username
    user = get_user_model().objects.filter(username=username).first()
    directory.answered(username, user)
    if user is None:
        return json_error(404, "not_found", f"no user {username[:150]!r}")
    return json_response({"id": user.pk, "username": user.username, "is_staff": user.is_staff})


@api(["GET"], auth=False, responses={"GET": {200: "the number of active users", **STAFF}})
def stats(request):
    identity = _identity(request)
    if identity is None or not identity.is_staff:
        return json_error(401 if identity is None else 403, "forbidden", "staff only")
    return json_response({"total_users": get_user_model().objects.filter(is_active=True).count()})


@csrf_exempt  # bearer only: a service token, never a cookie
@api(
    ["POST"],
    body=Subject,
    responses={"POST": {200: "the subject's local user", 403: "service tokens only"}},
)
def subjects(request, data: Subject):
    """The local user of a shop subject (the shop's user id), made when never seen."""
    # Only another Switchboard service (a service token, sub 0) maps subjects: a user,
    # even staff, must not mint local users for arbitrary shop ids.
    if request.identity.id != tokens.SERVICE_USER_ID:
        return json_error(403, "forbidden", "service tokens only")
    identity = shopusers.resolve(data.sub, data.name, rename=False)
    return json_response(identity.as_dict())


KEY_STORE_DOWN = "the key index (Redis) is unreachable; nothing changed"


@csrf_exempt  # bearer only: a staff token, never a cookie
@api(
    ["GET", "POST"],
    staff=True,
    body=NewApiKey,
    responses={
        "GET": {200: "every API key (never the key itself), newest first"},
        "POST": {201: "the new key: `key` is shown this once", 503: KEY_STORE_DOWN},
    },
)
def api_keys(request, data: NewApiKey | None = None):
    """The shop's API keys: list them, or make one (shown once)."""
    if request.method == "GET":
        return json_response({"keys": [k.as_dict() for k in apikeystore.listing()]})
    try:
        row, key = apikeystore.create(data.name, data.scopes, created_by=request.identity.username)
    except RedisError:
        return json_error(503, "key_store_unavailable", KEY_STORE_DOWN)
    return json_response({**row.as_dict(), "key": key}, status=201)


@csrf_exempt  # bearer only
@api(
    ["POST"],
    staff=True,
    responses={"POST": {200: "revoked: refused by every service from now", 404: "no such key", 503: KEY_STORE_DOWN}},
)
def revoke_api_key(request, key_id: str):
    """Revoke an API key at once, in every service."""
    try:
        row = apikeystore.revoke(key_id)
    except RedisError:
        return json_error(503, "key_store_unavailable", KEY_STORE_DOWN)
    if row is None:
        return json_error(404, "not_found", "no such API key")
    return json_response(row.as_dict())
