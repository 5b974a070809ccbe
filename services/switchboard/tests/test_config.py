"""Settings: each has a type, every value is parsed by it once, and a process with a value
of the wrong type refuses to start, naming the setting."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from switchboard import config
from switchboard.config import ROOT, SETTINGS, Kind, Setting, SettingsError


def test_every_default_parses_under_its_own_type():
    values = config.validate({})
    assert set(values) == {s.name for s in SETTINGS}
    assert isinstance(values["INBOX_SHARDS"], int)
    assert isinstance(values["SWITCHBOARD_DEBUG"], bool)
    assert values["ALLOWED_ORIGINS"] == ["http://127.0.0.1:8080", "http://localhost:8080"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INBOX_SHARDS", "four"),
        ("INBOX_SHARDS", "0"),  # at least one shard
        ("PRESENCE_HEARTBEAT_SECONDS", "10s"),
        ("SWITCHBOARD_DEBUG", "maybe"),  # was read as False
        ("METRICS_PORT", "70000"),
        ("REDIS_URL", "localhost"),
        ("CHANNEL_LAYER_URLS", "redis://a:6379/0,not a url"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_by_name(name, value):
    with pytest.raises(SettingsError) as refused:
        config.validate({name: value})
    assert refused.value.names == [name]
    assert name in str(refused.value)


def test_every_wrong_setting_is_named_at_once_and_secrets_are_not_echoed():
    with pytest.raises(SettingsError) as refused:
        config.validate({"INBOX_SHARDS": "x", "DATABASE_URL": "postgres//user:hunter2@db", "TOKEN_TTL_SECONDS": ""})
    assert refused.value.names == ["DATABASE_URL", "TOKEN_TTL_SECONDS", "INBOX_SHARDS"]
    assert "hunter2" not in str(refused.value)


def test_a_setting_is_read_only_as_its_declared_type(monkeypatch):
    monkeypatch.setenv("PRESENCE_HEARTBEAT_SECONDS", "2.5")
    assert config.value("PRESENCE_HEARTBEAT_SECONDS") == 2.5
    assert config.env_float("PRESENCE_HEARTBEAT_SECONDS") == 2.5
    with pytest.raises(TypeError, match="PRESENCE_HEARTBEAT_SECONDS is a float"):
        config.env_int("PRESENCE_HEARTBEAT_SECONDS")


def test_positional_settings_infer_their_type_from_the_default():
    assert Setting("A", "5", "doc").type is Kind.INT
    assert Setting("A", "0.2", "doc").type is Kind.FLOAT
    assert Setting("A", "redis://127.0.0.1:6379/0", "doc").type is Kind.URL
    assert Setting("A", "", "doc").type is Kind.STR
    assert Setting("A", "1", "doc", type=Kind.BOOL).type is Kind.BOOL


# A typed read that disagrees with the declaration would fail only when that line runs;
# this finds every one in the source, run or not.
READ = re.compile(r"\benv_(int|float|bool|list)\(\s*[\"']([A-Z][A-Z0-9_]+)[\"']")
READS_AS = {
    "int": {Kind.INT, Kind.PORT},
    "float": {Kind.FLOAT},
    "bool": {Kind.BOOL},
    "list": {Kind.LIST, Kind.URLS, Kind.OWNER_URLS},
}


def test_every_typed_read_in_the_source_matches_the_declared_type():
    by_name = {s.name: s for s in SETTINGS}
    wrong = []
    for folder in ("services", "deploy", "k8s", "gateway", "bench", "tests-e2e", "tests-compose"):
        for path in (ROOT / folder).rglob("*.py"):
            if "node_modules" in path.parts or path == Path(__file__):
                continue
            for kind, name in READ.findall(path.read_text()):
                if name not in by_name or by_name[name].type not in READS_AS[kind]:
                    wrong.append(f"{path.relative_to(ROOT)}: env_{kind}({name!r})")
    assert not wrong, wrong


def _start(env_overrides, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "services"), **env_overrides}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_django_process_refuses_to_start_with_a_wrong_setting():
    done = _start({"DJANGO_SETTINGS_MODULE": "chat.settings", "INBOX_SHARDS": "four"}, "-m", "django", "check")
    assert done.returncode != 0
    assert "INBOX_SHARDS" in done.stderr and "four" in done.stderr


def test_the_launcher_refuses_to_start_with_a_wrong_setting():
    # Before anything starts: a clear sentence, not a traceback from the first int().
    done = _start({"WS_GATEWAY_PROCESSES": "two", "INBOX_SHARDS": "four"}, "deploy/launcher.py", "run")
    assert done.returncode != 0
    assert "WS_GATEWAY_PROCESSES" in done.stderr and "INBOX_SHARDS" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_setting_under_its_old_name_is_refused_naming_the_new_one():
    # GATEWAY_PROCESSES=4 would otherwise run the default 2 ws-gateways without a word.
    with pytest.raises(config.SettingsError) as err:
        config.validate({"GATEWAY_PROCESSES": "4"})
    assert "GATEWAY_PROCESSES" in str(err.value) and "WS_GATEWAY_PROCESSES" in str(err.value)


@pytest.mark.parametrize(
    "url", ["redis://:secret@/0", "rediss://:pw@sentinel-managed/0", "sqlite://:memory:", "postgres://u:p%40@db/chat"]
)
def test_urls_their_readers_take_are_accepted(url):
    # redis://:password@/0 is what REDIS_URL holds with Sentinel (only db and password).
    assert config.validate({"REDIS_URL": url, "DATABASE_URL": url})["REDIS_URL"] == url


def test_a_url_with_a_port_that_is_not_a_number_is_refused():
    with pytest.raises(SettingsError, match="numeric port"):
        config.validate({"REDIS_URL": "redis://proxy:80a/0"})


@pytest.mark.parametrize(
    "value",
    [
        "http://127.0.0.1:8080",
        "http://proxy",
        "chat=http://chat-http,ws-gateway=http://ws-gateway",
        "chat=http://c,http://proxy",
    ],
)
def test_service_urls_as_every_deployment_writes_them_are_accepted(value):
    # k8s gives each owner its Service (owner=URL pairs); a process checks them as it starts.
    assert config.validate({"SERVICE_URLS": value})["SERVICE_URLS"] == value.split(",")


@pytest.mark.parametrize("value", ["chat=chat-http", "=http://x", "chat=http://c:8o"])
def test_service_urls_that_do_not_parse_are_refused(value):
    with pytest.raises(SettingsError, match="SERVICE_URLS"):
        config.validate({"SERVICE_URLS": value})
