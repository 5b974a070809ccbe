"""Tokens: what verifies, and everything that must not."""

import jwt

from switchboard import tokens
from switchboard.config import env
from switchboard.tokens import Identity


def test_issued_token_verifies_to_the_same_identity():
    alice = Identity(7, "alice", False)
    assert tokens.verify(tokens.issue(alice)) == alice


def test_expired_token_is_refused():
    assert tokens.verify(tokens.issue(Identity(1, "a"), ttl=10, now=1_000)) is None


def test_token_signed_with_another_key_is_refused():
    forged = jwt.encode({"sub": "1", "name": "admin", "staff": True, "exp": 2**40}, "other-key", algorithm="HS256")
    assert tokens.verify(forged) is None


def test_unsigned_token_is_refused():
    forged = jwt.encode({"sub": "1", "name": "admin", "staff": True, "exp": 2**40}, None, algorithm="none")
    assert tokens.verify(forged) is None


def test_garbage_is_refused():
    for junk in ("", "x", "a.b.c", "Bearer abc"):
        assert tokens.verify(junk) is None


def test_service_token_is_staff():
    assert tokens.verify(tokens.service_token("report-worker")).is_staff


# ---- keys: separate from Django's SECRET_KEY, named by kid, rotated by a list ----
OLD = "old:" + "o" * 40
NEW = "new:" + "n" * 40


def test_token_signed_with_django_secret_key_is_refused():
    alice = {"sub": "1", "name": "alice", "staff": True, "exp": 2**40}
    kid = next(iter(tokens.keyring())) if hasattr(tokens, "keyring") else "dev"
    for headers in (None, {"kid": kid}):
        forged = jwt.encode(alice, env("SWITCHBOARD_SECRET_KEY"), algorithm="HS256", headers=headers)
        assert tokens.verify(forged) is None


def test_token_names_its_key():
    token = tokens.issue(Identity(1, "alice"), keys=f"{NEW},{OLD}")
    assert jwt.get_unverified_header(token)["kid"] == "new"


def test_token_of_an_old_but_accepted_key_verifies_after_rotation():
    before = tokens.issue(Identity(1, "alice"), keys=OLD)
    assert tokens.verify(before, keys=f"{NEW},{OLD}") == Identity(1, "alice")


def test_token_of_a_removed_key_is_refused():
    before = tokens.issue(Identity(1, "alice"), keys=OLD)
    assert tokens.verify(before, keys=NEW) is None


def test_token_with_an_unknown_or_missing_kid_is_refused():
    secret = OLD.split(":", 1)[1]
    claims = {"sub": "1", "name": "alice", "exp": 2**40}
    for headers in (None, {"kid": "other"}):
        assert tokens.verify(jwt.encode(claims, secret, algorithm="HS256", headers=headers), keys=OLD) is None


def test_keyring_is_parsed_strictly():
    assert list(tokens.parse_keyring(f" {NEW} , {OLD} ")) == ["new", "old"]
    for bad in ("nokid", ":secret", "kid:", f"{OLD},{OLD}"):
        try:
            tokens.parse_keyring(bad)
        except tokens.KeyringError as exc:
            assert "o" * 8 not in str(exc)  # names a kid or a place, never a secret
            continue
        raise AssertionError(f"{bad!r} was accepted")
    # Empty is "no keys" for the parser (SHOP_JWT_KEYS unset); Switchboard needs one.
    assert tokens.parse_keyring("") == {}
    try:
        tokens.keyring("")
    except tokens.KeyringError:
        pass
    else:
        raise AssertionError("an empty SWITCHBOARD_JWT_KEYS was accepted")


def test_on_behalf_of_carries_the_user_not_staff():
    assert tokens.verify(tokens.on_behalf_of(Identity(5, "bob"))) == Identity(5, "bob", False)
