"""mint_token makes what Switchboard's own verifier accepts (switchboard/shoptokens.py,
the code every service runs), with each key kind; what it refuses to make."""

import jwt
import pytest

from switchboard import shoptokens
from switchboard.shoptesting import ShopKey, write_jwks
from switchboard_client import SigningKey, mint_token

SECRET = "client-test-shop-secret-0123456789abcdefghij"


@pytest.fixture(autouse=True)
def switchboard_settings(monkeypatch, tmp_path):
    for name in ("SHOP_JWKS", "SHOP_JWT_AUDIENCE", "SHOP_JWT_ISSUER", "SWITCHBOARD_SHOP_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHOP_JWT_KEYS", f"shop-1:{SECRET}")


def test_an_hs256_token_is_accepted_as_the_shop_user():
    got = shoptokens.verify(mint_token(42, "Ann", staff=True, key=f"shop-1:{SECRET}"))
    assert (got.sub, got.name, got.staff) == ("42", "Ann", True)


def test_the_key_comes_from_the_environment_when_not_passed(monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_SHOP_KEY", f"shop-1:{SECRET}")
    assert shoptokens.verify(mint_token("u-1", "Ann")).sub == "u-1"
    monkeypatch.delenv("SWITCHBOARD_SHOP_KEY")
    with pytest.raises(ValueError, match="SWITCHBOARD_SHOP_KEY"):
        mint_token("u-1", "Ann")


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_rs256_and_es256_tokens_are_accepted_through_the_jwks(kind, tmp_path, monkeypatch):
    shop_key = ShopKey.rsa("rsa-1") if kind == "rsa" else ShopKey.ec("ec-1")
    write_jwks(tmp_path / "jwks.json", shop_key)
    monkeypatch.setenv("SHOP_JWKS", str(tmp_path / "jwks.json"))
    signing = SigningKey(shop_key.kid, shop_key.private_key, shop_key.algorithm)
    assert shoptokens.verify(mint_token("u-2", "Key", key=signing)).sub == "u-2"


def test_audience_and_issuer_when_switchboard_asks_for_them(monkeypatch):
    monkeypatch.setenv("SHOP_JWT_AUDIENCE", "switchboard")
    monkeypatch.setenv("SHOP_JWT_ISSUER", "https://shop.example")
    key = f"shop-1:{SECRET}"
    assert shoptokens.verify(mint_token("u", "A", key=key)) is None
    assert shoptokens.verify(mint_token("u", "A", key=key, audience="switchboard", issuer="https://shop.example"))


def test_the_token_expires_after_ttl():
    token = mint_token("u", "A", ttl=60, key=f"shop-1:{SECRET}", now=1_000_000)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60
    assert shoptokens.verify(token) is None  # long expired


def test_what_switchboard_would_refuse_is_not_minted():
    key = f"shop-1:{SECRET}"
    for bad in ({"sub": ""}, {"sub": "x" * 256}, {"ttl": 0}):
        with pytest.raises(ValueError):
            mint_token(**{"sub": "u", "name": "A", "key": key, **bad})
    with pytest.raises(TypeError):
        mint_token("u", "A", staff="false", key=key)
    for bad_key in ("nokid", ":secret", "kid:"):
        with pytest.raises(ValueError):
            mint_token("u", "A", key=bad_key)
    with pytest.raises(ValueError):
        SigningKey("k", "secret", "HS512")


def test_a_key_never_shows_its_secret():
    assert SECRET not in repr(SigningKey.parse(f"shop-1:{SECRET}"))
