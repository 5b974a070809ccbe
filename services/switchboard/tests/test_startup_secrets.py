"""A production process (SWITCHBOARD_DEBUG=0) refuses the documented default secrets."""

import os
import subprocess
import sys

import pytest

from switchboard.config import ROOT, default

GOOD_SECRET = "s" * 50
GOOD_JWT = "k1:" + "j" * 50


def start(**env) -> subprocess.CompletedProcess:
    """Load a real service's settings in a fresh process, as daphne or celery does."""
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT / "services"),
            "DJANGO_SETTINGS_MODULE": "chat.settings",
            "SWITCHBOARD_DEBUG": "0",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "env",
    [
        {"SWITCHBOARD_SECRET_KEY": default("SWITCHBOARD_SECRET_KEY"), "SWITCHBOARD_JWT_KEYS": GOOD_JWT},
        {"SWITCHBOARD_SECRET_KEY": GOOD_SECRET, "SWITCHBOARD_JWT_KEYS": default("SWITCHBOARD_JWT_KEYS")},
        {"SWITCHBOARD_SECRET_KEY": GOOD_SECRET, "SWITCHBOARD_JWT_KEYS": f"{GOOD_JWT},old:short"},
        {"SWITCHBOARD_SECRET_KEY": GOOD_SECRET, "SWITCHBOARD_JWT_KEYS": "k1:" + GOOD_SECRET},
        {"SWITCHBOARD_SECRET_KEY": "short", "SWITCHBOARD_JWT_KEYS": GOOD_JWT},
        {"SWITCHBOARD_SECRET_KEY": GOOD_SECRET, "SWITCHBOARD_JWT_KEYS": "no-kid-here"},
    ],
    ids=["default-secret-key", "default-jwt-key", "short-old-jwt-key", "jwt-key-is-secret-key", "short", "bad-list"],
)
def test_production_process_refuses_insecure_secrets(env):
    result = start(**env)
    assert result.returncode != 0
    # A list that does not parse is refused by the settings check itself, in every mode.
    assert "refusing to start with SWITCHBOARD_DEBUG=0" in result.stderr or "SWITCHBOARD_JWT_KEYS" in result.stderr


GOOD_SHOP = "shop1:" + "h" * 50


@pytest.mark.parametrize(
    ("shop_keys", "why"),
    [
        ("shop1:" + GOOD_SECRET, "SHOP_JWT_KEYS key 'shop1' is SWITCHBOARD_SECRET_KEY"),
        (f"{GOOD_SHOP},old:" + GOOD_JWT.split(":", 1)[1], "SHOP_JWT_KEYS key 'old' is SWITCHBOARD_JWT_KEYS key 'k1'"),
        ("k1:" + "z" * 50, "SHOP_JWT_KEYS key id 'k1' is also a SWITCHBOARD_JWT_KEYS key id"),
        ("no-kid-here", "SHOP_JWT_KEYS"),
    ],
    ids=["shop-key-is-secret-key", "shop-key-is-jwt-key", "shop-kid-is-jwt-kid", "bad-list"],
)
@pytest.mark.parametrize("debug", ["0", "1"])
def test_a_shop_key_that_is_one_of_switchboards_refuses_start_up_in_every_mode(shop_keys, why, debug):
    # The shop's back end (or whoever has its key) would sign sessions or Switchboard tokens.
    result = start(
        SWITCHBOARD_DEBUG=debug,
        SWITCHBOARD_SECRET_KEY=GOOD_SECRET,
        SWITCHBOARD_JWT_KEYS=GOOD_JWT,
        SHOP_JWT_KEYS=shop_keys,
    )
    assert result.returncode != 0
    assert why in result.stderr
    assert GOOD_SECRET not in result.stderr and "z" * 50 not in result.stderr


def test_production_process_refuses_a_short_shop_key():
    result = start(SWITCHBOARD_SECRET_KEY=GOOD_SECRET, SWITCHBOARD_JWT_KEYS=GOOD_JWT, SHOP_JWT_KEYS="shop1:short")
    assert result.returncode != 0
    assert "SHOP_JWT_KEYS key 'shop1' is a documented placeholder or under 32 characters" in result.stderr


def test_production_process_starts_with_a_shop_key_of_its_own():
    result = start(SWITCHBOARD_SECRET_KEY=GOOD_SECRET, SWITCHBOARD_JWT_KEYS=GOOD_JWT, SHOP_JWT_KEYS=GOOD_SHOP)
    assert result.returncode == 0, result.stderr


def test_production_process_starts_with_real_secrets():
    result = start(SWITCHBOARD_SECRET_KEY=GOOD_SECRET, SWITCHBOARD_JWT_KEYS=GOOD_JWT)
    assert result.returncode == 0, result.stderr


def test_debug_process_starts_with_the_defaults():
    result = start(
        SWITCHBOARD_DEBUG="1",
        SWITCHBOARD_SECRET_KEY=default("SWITCHBOARD_SECRET_KEY"),
        SWITCHBOARD_JWT_KEYS=default("SWITCHBOARD_JWT_KEYS"),
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("jwks", "starts"),
    [
        ("http://shop.example/.well-known/jwks.json", False),
        ("https://shop.example/.well-known/jwks.json", True),
        ("http://127.0.0.1:8000/jwks.json", True),  # the shop on this host
        ("/etc/switchboard/shop-jwks.json", True),
    ],
)
def test_production_process_refuses_a_jwks_over_plain_http_of_another_host(jwks, starts):
    result = start(SWITCHBOARD_SECRET_KEY=GOOD_SECRET, SWITCHBOARD_JWT_KEYS=GOOD_JWT, SHOP_JWKS=jwks)
    assert (result.returncode == 0) == starts, result.stderr[-500:]
    if not starts:
        assert "SHOP_JWKS is a plain-http URL of another host" in result.stderr
