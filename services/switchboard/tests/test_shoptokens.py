"""Shop tokens: what the shop's back end signs verifies, and everything else does not.

Keys are generated per test (switchboard/shoptesting.py); the settings are the
environment's, as in a process."""

import json

import jwt
import pytest

from switchboard import shoptokens, tokens
from switchboard.config import env
from switchboard.jsonserver import JsonServer
from switchboard.shoptesting import ShopKey, claims, forge_hs256, mint_hs256, write_jwks

SECRET = "shop-hs256-secret-0123456789abcdefghijklmnop"
OTHER = "shop-hs256-other-secret-0123456789abcdefghijk"


@pytest.fixture(autouse=True)
def shop_env(monkeypatch):
    for name in ("SHOP_JWT_KEYS", "SHOP_JWKS", "SHOP_JWT_AUDIENCE", "SHOP_JWT_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHOP_JWT_KEYS", f"s2:{SECRET}")


@pytest.fixture
def jwks(tmp_path, monkeypatch):
    """A JWKS file with a fresh RSA and EC key, as SHOP_JWKS."""
    path = tmp_path / "jwks.json"
    keys = {"rsa": ShopKey.rsa("rsa-1"), "ec": ShopKey.ec("ec-1")}
    write_jwks(path, *keys.values())
    monkeypatch.setenv("SHOP_JWKS", str(path))
    return path, keys


def test_hs256_token_of_a_listed_key_verifies_to_its_claims():
    got = shoptokens.verify(mint_hs256("s2", SECRET, sub="u-42", name="Ann", staff=True))
    assert (got.sub, got.name, got.staff) == ("u-42", "Ann", True)


def test_rotation_old_key_accepted_while_listed_refused_once_removed(monkeypatch):
    old = mint_hs256("s1", OTHER)
    monkeypatch.setenv("SHOP_JWT_KEYS", f"s2:{SECRET},s1:{OTHER}")
    assert shoptokens.verify(old) is not None
    monkeypatch.setenv("SHOP_JWT_KEYS", f"s2:{SECRET}")
    assert shoptokens.verify(old) is None


def test_token_without_a_kid_or_with_an_unlisted_one_is_refused():
    for headers in (None, {"kid": "s9"}, {"kid": ""}):
        assert shoptokens.verify(jwt.encode(claims(), SECRET, algorithm="HS256", headers=headers)) is None


def test_token_signed_with_djangos_secret_key_or_switchboards_key_is_refused():
    own_kid, own_secret = next(iter(tokens.keyring().items()))
    for secret in (env("SWITCHBOARD_SECRET_KEY"), own_secret):
        for kid in ("s2", own_kid):
            assert shoptokens.verify(mint_hs256(kid, secret)) is None
    # And through the one verify every route calls: nobody.
    assert tokens.verify(mint_hs256("s2", env("SWITCHBOARD_SECRET_KEY"))) is None


def test_expired_token_is_refused():
    assert shoptokens.verify(mint_hs256("s2", SECRET, ttl=-5)) is None


def test_required_claims_and_their_types():
    def forged(**payload):
        return jwt.encode(payload, SECRET, algorithm="HS256", headers={"kid": "s2"})

    exp = claims()["exp"]
    assert shoptokens.verify(forged(sub="u", exp=exp)).name is None  # name optional
    assert shoptokens.verify(forged(sub="u", exp=exp)).staff is False  # staff absent: not staff
    for bad in (
        {"exp": exp},  # no sub
        {"sub": "u"},  # no exp
        {"sub": 42, "exp": exp},  # the shop's id is a string
        {"sub": "", "exp": exp},
        {"sub": "x" * 256, "exp": exp},
        {"sub": "u", "exp": exp, "staff": "false"},  # a string is not a boolean
        {"sub": "u", "exp": exp, "staff": 1},
        {"sub": "u", "exp": exp, "name": ["a"]},
    ):
        assert shoptokens.verify(forged(**bad)) is None, bad


def test_audience_checked_when_set(monkeypatch):
    with_aud = mint_hs256("s2", SECRET, aud="switchboard")
    wrong_aud = mint_hs256("s2", SECRET, aud="another-app")
    no_aud = mint_hs256("s2", SECRET)
    # Unset: a token meant for a named audience is not ours.
    assert shoptokens.verify(no_aud) is not None
    assert shoptokens.verify(with_aud) is None
    monkeypatch.setenv("SHOP_JWT_AUDIENCE", "switchboard")
    assert shoptokens.verify(with_aud) is not None
    assert shoptokens.verify(wrong_aud) is None
    assert shoptokens.verify(no_aud) is None


def test_issuer_checked_when_set(monkeypatch):
    right, wrong, none = (mint_hs256("s2", SECRET, **kw) for kw in ({"iss": "shop"}, {"iss": "evil"}, {}))
    assert all(shoptokens.verify(t) is not None for t in (right, wrong, none))  # unset: not checked
    monkeypatch.setenv("SHOP_JWT_ISSUER", "shop")
    assert shoptokens.verify(right) is not None
    assert shoptokens.verify(wrong) is None
    assert shoptokens.verify(none) is None


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_rs256_and_es256_tokens_verify_through_a_jwks_file(jwks, kind):
    _, keys = jwks
    got = shoptokens.verify(keys[kind].mint(sub=f"{kind}-user", name="Key User"))
    assert (got.sub, got.name) == (f"{kind}-user", "Key User")


def test_a_jwks_key_signed_token_of_another_key_pair_is_refused(jwks):
    impostor = ShopKey.rsa("rsa-1")  # the same kid, not the shop's key
    assert shoptokens.verify(impostor.mint()) is None


def test_algorithm_confusion_hs256_keyed_with_the_jwks_public_key_is_refused(jwks):
    _, keys = jwks
    rsa_key = keys["rsa"]
    payload = claims(sub="attacker", staff=True)
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}
    # The public key as an HMAC secret, in every form a verifier might hand to HMAC.
    for secret in (rsa_key.public_pem, json.dumps(rsa_key.jwk).encode(), rsa_key.jwk["n"].encode()):
        assert shoptokens.verify(forge_hs256(header, payload, secret)) is None
    # Nor does a header's `alg` pick another algorithm for a key: none, or RS256 for an EC key.
    assert shoptokens.verify(jwt.encode(payload, None, algorithm="none", headers={"kid": rsa_key.kid})) is None
    ec_as_rs = ShopKey("ec-1", "RS256", ShopKey.rsa("x").private_key).mint()
    assert shoptokens.verify(ec_as_rs) is None


def test_jwks_keys_of_other_types_or_algorithms_verify_nothing(tmp_path, monkeypatch):
    path = tmp_path / "jwks.json"
    rs512 = ShopKey.rsa("rs512")
    oct_key = {"kty": "oct", "kid": "oct-1", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}
    write_jwks(path, {**rs512.jwk, "alg": "RS512"}, oct_key)
    monkeypatch.setenv("SHOP_JWKS", str(path))
    rs512_token = jwt.encode(claims(), rs512.private_key, algorithm="RS512", headers={"kid": "rs512"})
    assert shoptokens.verify(rs512_token) is None
    oct_token = jwt.encode(claims(), b"secret-secret-secret-secret-secret", algorithm="HS256", headers={"kid": "oct-1"})
    assert shoptokens.verify(oct_token) is None


def test_a_replaced_jwks_file_rotates_keys_without_a_restart(jwks):
    path, keys = jwks
    new = ShopKey.ec("ec-2")
    assert shoptokens.verify(new.mint()) is None
    write_jwks(path, keys["rsa"], new)  # ec-1 rotated out, ec-2 in
    assert shoptokens.verify(new.mint()) is not None
    assert shoptokens.verify(keys["ec"].mint()) is None
    assert shoptokens.verify(keys["rsa"].mint()) is not None


def test_a_missing_or_broken_jwks_file_refuses_its_tokens_and_hs256_still_works(tmp_path, monkeypatch):
    key = ShopKey.rsa("rsa-1")
    for content in (None, "not json", '{"keys": []}', "[]"):
        path = tmp_path / "jwks.json"
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(content)
        monkeypatch.setenv("SHOP_JWKS", str(path))
        assert shoptokens.verify(key.mint()) is None
        assert shoptokens.verify(mint_hs256("s2", SECRET)) is not None


def test_rs256_token_verifies_through_a_jwks_url(monkeypatch):
    """A real HTTP endpoint; fetched once, then cached."""
    key = ShopKey.rsa("url-1")
    with JsonServer(lambda path: {"keys": [key.jwk]}) as server:
        monkeypatch.setenv("SHOP_JWKS", f"{server.url}/.well-known/jwks.json")
        assert shoptokens.verify(key.mint(sub="from-url")).sub == "from-url"
        assert shoptokens.verify(key.mint(sub="again")).sub == "again"
        # An unknown kid asks the endpoint again at most once per UNKNOWN_KID_REFETCH_SECONDS.
        for i in range(5):
            assert shoptokens.verify(ShopKey.rsa(f"unknown-{i}").mint()) is None
        assert len(server.paths) == 2


def test_switchboard_tokens_are_not_shop_tokens():
    own = tokens.issue(tokens.Identity(1, "alice"))
    assert shoptokens.verify(own) is None
