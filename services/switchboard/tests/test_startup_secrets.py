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
    assert "refusing to start with SWITCHBOARD_DEBUG=0" in result.stderr


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
