"""The launcher: every port of a fleet is its own; a fleet has secrets of its own."""

from __future__ import annotations

import launcher
from launcher import free_port


def test_no_port_is_handed_out_twice():
    # Ports are picked long before their programs bind them; the kernel happily offers
    # a port it offered a moment ago, so without the launcher's memory a few thousand
    # picks repeat some (and two programs of one fleet would fight over one).
    ports = [free_port() for _ in range(3000)]
    assert len(set(ports)) == len(ports)


def test_local_secrets_are_random_kept_and_private(tmp_path):
    path = tmp_path / "var" / "local-secrets.json"
    first = launcher.local_secrets(path)
    assert launcher.local_secrets(path) == first  # kept: sessions survive a restart
    assert launcher.local_secrets(tmp_path / "other.json") != first  # random per checkout
    assert path.stat().st_mode & 0o077 == 0
    from switchboard.settings_base import insecure_secrets

    assert insecure_secrets(first["SWITCHBOARD_SECRET_KEY"], first["SWITCHBOARD_JWT_KEYS"]) == []


def test_fleet_without_secrets_in_its_environment_gets_the_local_ones(tmp_path, monkeypatch):
    for name in launcher.LOCAL_SECRETS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(launcher, "LOCAL_SECRETS_FILE", tmp_path / "local-secrets.json")
    fleet = launcher.Fleet(run_dir=tmp_path / "run", redis_url="redis://127.0.0.1:1/0")
    fleet.plan()
    kept = launcher.local_secrets()
    assert {n: fleet.setting(n) for n in launcher.LOCAL_SECRETS} == {n: kept[n] for n in launcher.LOCAL_SECRETS}


def test_allowed_origins_from_the_environment_reach_every_process(tmp_path, monkeypatch):
    # `ALLOWED_ORIGINS=...,http://127.0.0.1:8000 make run`: the quickstart's shop on its own
    # port opens sockets; without the variable the fleet allows its own gateway's origin.
    monkeypatch.setattr(launcher, "LOCAL_SECRETS_FILE", tmp_path / "local-secrets.json")
    monkeypatch.delenv("ALLOWED_ORIGINS", raising=False)
    fleet = launcher.Fleet(run_dir=tmp_path / "a", gateway_port=8123, redis_url="redis://127.0.0.1:1/0")
    fleet.plan()
    assert fleet.setting("ALLOWED_ORIGINS") == "http://127.0.0.1:8123,http://localhost:8123"
    monkeypatch.setenv("ALLOWED_ORIGINS", "http://127.0.0.1:8123,http://127.0.0.1:8000")
    fleet = launcher.Fleet(run_dir=tmp_path / "b", gateway_port=8123, redis_url="redis://127.0.0.1:1/0")
    fleet.plan()
    assert fleet.setting("ALLOWED_ORIGINS") == "http://127.0.0.1:8123,http://127.0.0.1:8000"
