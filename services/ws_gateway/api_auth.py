"""The auth API: tokens for API clients, and checks nginx asks the gateway about.

POST /api/auth/token/ {"username", "password"} -> 200 {"access", "expires_in"} | 401 | 429
GET  /api/auth/session-token/  a token for the logged-in web UI (session cookie)
GET  /api/auth/me/             who the bearer or session is
GET  /api/auth/check-staff/    200 staff, 401 anonymous, 403 other (nginx auth_request)
GET  /api/auth/users/?username=<name>   staff: that user's id (404 if none)
GET  /api/auth/stats/          staff: {"total_users": n}
"""

from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ConfigDict, Field

from switchboard import tokens
from switchboard.config import env_int
from switchboard.http import api, bearer_identity, json_error, json_response
from ws_gateway import clientip, throttle


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=256)


class UserQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # Absent is "no such user" (404), so who may ask is still answered first.
    username: str = Field(default="", max_length=150)


# Every view but token() takes a bearer token or the web UI's session cookie, so the
# decorator does not require a token (auth=False) and each view says who may ask.
STAFF = {401: "no valid token or session", 403: "staff only"}


def _token_body(identity: tokens.Identity) -> dict:
    ttl = env_int("TOKEN_TTL_SECONDS")
    return {"access": tokens.issue(identity, ttl), "token_type": "Bearer", "expires_in": ttl}


def _identity(request) -> tokens.Identity | None:
    bearer = bearer_identity(request)
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
    if user is None:
        return json_error(404, "not_found", f"no user {username[:150]!r}")
    return json_response({"id": user.pk, "username": user.username, "is_staff": user.is_staff})


@api(["GET"], auth=False, responses={"GET": {200: "the number of active users", **STAFF}})
def stats(request):
    identity = _identity(request)
    if identity is None or not identity.is_staff:
        return json_error(401 if identity is None else 403, "forbidden", "staff only")
    return json_response({"total_users": get_user_model().objects.filter(is_active=True).count()})
