"""Tokens: what verifies, and everything that must not."""

import jwt

from switchboard import tokens
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
