"""The shop's API keys: made and revoked here, checked by any service through the Redis
index (switchboard/apikeys.py), with a per-key rate limit, through @api(key_scope=...)."""

import io

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import RequestFactory

from switchboard import apikeys, tokens
from switchboard.http import api, json_response
from switchboard.testing import free_port
from ws_gateway.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_key_client(redis_url):
    apikeys.reset()
    yield
    apikeys.reset()


@api(["POST"], key_scope="notify")
def notify_view(request):
    return json_response({"key": request.api_key.id, "identity": request.identity})


def call(key: str | None, view=notify_view):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    res = view(RequestFactory().post("/x/", data=b"{}", content_type="application/json", **headers))
    res.json = lambda: orjson.loads(res.content)  # what the test client's responses have
    return res


def staff_header():
    admin = get_user_model().objects.create_user("admin", password="pw", is_staff=True)
    return {"HTTP_AUTHORIZATION": "Bearer " + tokens.issue(tokens.Identity(admin.pk, "admin", True))}


def test_a_key_is_shown_once_and_only_its_hash_is_stored(client):
    res = client.post(
        "/api/auth/api-keys/",
        {"name": "shop web", "scopes": ["notify", "chat"]},
        content_type="application/json",
        **staff_header(),
    )
    assert res.status_code == 201, res.content
    body = res.json()
    key = body["key"]
    assert key.startswith(f"sbk_{body['id']}_") and body["scopes"] == ["chat", "notify"]
    row = ApiKey.objects.get(key_id=body["id"])
    assert row.key_hash == apikeys.digest(key)
    assert key not in str(ApiKey.objects.values().get(pk=row.pk))
    listed = client.get("/api/auth/api-keys/", **staff_header_again()).json()["keys"]
    assert [k["id"] for k in listed] == [body["id"]] and "key" not in listed[0]
    assert call(key).json()["key"] == body["id"]


def staff_header_again():
    admin = get_user_model().objects.get(username="admin")
    return {"HTTP_AUTHORIZATION": "Bearer " + tokens.issue(tokens.Identity(admin.pk, "admin", True))}


def test_only_staff_manages_keys(client):
    alice = get_user_model().objects.create_user("alice", password="pw")
    user = {"HTTP_AUTHORIZATION": "Bearer " + tokens.issue(tokens.Identity(alice.pk, "alice"))}
    body = {"name": "x", "scopes": ["notify"]}
    assert client.post("/api/auth/api-keys/", body, content_type="application/json", **user).status_code == 403
    assert client.post("/api/auth/api-keys/", body, content_type="application/json").status_code == 401
    assert client.get("/api/auth/api-keys/", **user).status_code == 403
    assert ApiKey.objects.count() == 0


@pytest.mark.parametrize("scopes", [[], ["notify", "admin"]])
def test_a_key_needs_known_scopes(client, scopes):
    res = client.post(
        "/api/auth/api-keys/", {"name": "x", "scopes": scopes}, content_type="application/json", **staff_header()
    )
    assert res.status_code == 400


def test_a_revoked_key_is_refused_at_once_and_another_key_of_the_scope_still_works(client):
    out = io.StringIO()
    call_command("apikey", "create", "--name", "old", "--scope", "notify", stdout=out, stderr=io.StringIO())
    old = out.getvalue().strip()
    out = io.StringIO()
    call_command("apikey", "create", "--name", "new", "--scope", "notify", stdout=out, stderr=io.StringIO())
    new = out.getvalue().strip()
    assert call(old).status_code == 200 and call(new).status_code == 200
    res = client.post(f"/api/auth/api-keys/{apikeys.key_id_of(old)}/revoke/", **staff_header())
    assert res.status_code == 200 and res.json()["revoked"]
    refused = call(old)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_api_key"
    assert call(new).status_code == 200  # rotation: the other key of the scope goes on
    listed = io.StringIO()
    call_command("apikey", "list", stdout=listed)
    assert "revoked" in listed.getvalue() and "active" in listed.getvalue()


def test_revoking_an_unknown_key_is_404(client):
    assert client.post("/api/auth/api-keys/0123456789abcdef/revoke/", **staff_header()).status_code == 404


def test_wrong_scope_is_403_and_a_user_token_or_a_forged_key_is_401():
    from ws_gateway import apikeystore

    _, chat_key = apikeystore.create("chat only", ["chat"])
    assert call(chat_key).status_code == 403
    assert call(tokens.issue(tokens.Identity(1, "alice", True))).status_code == 401
    assert call(None).status_code == 401
    forged = chat_key[:-4] + "AAAA"
    assert call(forged).status_code == 401


def test_the_key_rate_limit_answers_429_with_retry_after(monkeypatch):
    from ws_gateway import apikeystore

    monkeypatch.setenv("API_KEY_RATE_PER_SECOND", "0.01")
    monkeypatch.setenv("API_KEY_RATE_BURST", "2")
    _, key = apikeystore.create("busy", ["notify"])
    _, other = apikeystore.create("other", ["notify"])
    assert [call(key).status_code for _ in range(3)] == [200, 200, 429]
    limited = call(key)
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert call(other).status_code == 200  # per key, not per shop


def test_an_unreachable_key_store_is_503_and_a_create_then_stores_nothing(monkeypatch):
    from redis.exceptions import RedisError

    from ws_gateway import apikeystore

    _, key = apikeystore.create("before", ["notify"])
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    apikeys.reset()
    res = call(key)
    assert res.status_code == 503 and res.json()["error"] == "key_store_unavailable"
    with pytest.raises(RedisError):
        apikeystore.create("during", ["notify"])
    with pytest.raises(RedisError):
        apikeystore.revoke(apikeys.key_id_of(key))
    assert list(ApiKey.objects.values_list("name", "revoked_at")) == [("before", None)]


def test_sync_rewrites_an_index_that_lost_its_data(redis_url):
    import redis

    from ws_gateway import apikeystore

    _, key = apikeystore.create("shop", ["notify"])
    redis.Redis.from_url(redis_url).flushall()
    assert call(key).status_code == 401
    call_command("apikey", "sync", stdout=io.StringIO())
    assert call(key).status_code == 200
